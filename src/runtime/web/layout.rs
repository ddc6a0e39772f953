//! The page shell every page shares: landmarks (header, nav, main), a
//! skip link for keyboards, the signed-in person with a sign-out form, and
//! the stylesheet, embedded in the binary (no CDN: the machine may be
//! offline).

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::session::Viewer;

/// The stylesheet, inlined in every page.
pub const STYLE: &str = include_str!("style.css");

/// A whole page titled `title` around `body`.
pub fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · handoff" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a href="/" { "handoff" }
                    @if viewer.is_some() {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Dashboard" } }
                                li { a href="/handoffs" { "Handoffs" } }
                                li { a href="/drafts" { "Email drafts" } }
                                li { a href="/dead-letters" { "Dead letters" } }
                            }
                        }
                    }
                    @if let Some(v) = viewer {
                        div.who {
                            span { "Signed in as " (v.who) }
                            @if let Some(csrf) = &v.csrf {
                                form.inline method="post" action="/signout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// The hidden field every form carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! {
        @if let Some(csrf) = &viewer.csrf {
            input type="hidden" name="csrf" value=(csrf);
        }
    }
}

/// A status as a labelled badge.
pub fn status(s: &str) -> Markup {
    html! { span class={ "status " (s) } { (s) } }
}
