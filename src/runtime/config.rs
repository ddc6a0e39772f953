//! The server's [`Settings`], read in layers: built-in defaults, then the
//! `handoff.toml` file, then `HANDOFF_*` environment variables, then command
//! line flags (each layer overrides the one before).
//!
//! Secrets are different: they come ONLY from the environment, either the
//! variable itself (`HANDOFF_API_TOKEN=…`) or a file named by the same
//! variable with `_FILE` (`HANDOFF_API_TOKEN_FILE=/run/secrets/token`, the
//! way container platforms mount them). A secret in `handoff.toml` is an
//! error, because that file is meant to be committed. Secrets are held as
//! [`Secret`]s, so printing the settings never shows them.
//!
//! This module reads and checks; it never logs. [`Settings::validate`] holds
//! the checks that look at several keys at once (an address reachable from
//! the network needs a token).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::secret::Secret;

pub mod people;
pub use people::Person;

/// The config file read when neither `--config` nor `HANDOFF_CONFIG` names
/// one; a missing default file is not an error.
pub const DEFAULT_CONFIG_FILE: &str = "handoff.toml";

/// Everything `handoff serve` can be told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The folder of `.handoff` files (watched for changes).
    pub workflows: PathBuf,
    /// The SQLite database file.
    pub db: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// SQLite's `synchronous` mode: how hard a commit waits for the disk.
    pub synchronous: Synchronous,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Webhook requests taken at once; past this a hook answers 503 with
    /// `Retry-After` (see `http::in_flight`).
    pub max_in_flight: usize,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The address people reach the server at, for links in tasks and
    /// notifications (default: `http://` + the listen address).
    pub public_url: Option<String>,
    /// Watch the workflows folder and reload on change (SIGHUP reloads
    /// either way). Off where file events do not arrive (some network file
    /// systems).
    pub watch: bool,
    /// Tokens, signing secrets and passwords (environment only).
    pub secrets: Secrets,
    /// People who sign in to the web pages with their own token
    /// (`[people."…"]` and `HANDOFF_TOKEN_<NAME>`, see [`people`]).
    pub people: Vec<Person>,
    /// The health report's targets (`[health]` in the file).
    pub health: crate::health::Targets,
    /// The CRM mapping: `[hubspot]` and `[pipedrive]` in `handoff.toml`.
    pub crm: crate::runtime::adapters::mapping::Mapping,
    /// Where the outbox's actions go (`[delivery]` in handoff.toml).
    pub delivery: super::delivery::DeliverySettings,
    /// Reverse proxies in front of the server (addresses or blocks such as
    /// `10.0.0.0/8`): from them, and only from them, `X-Forwarded-For` is
    /// believed to name the client whose wrong tokens are counted (see
    /// `http::guesses`). Empty by default: the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workflows: PathBuf::from("workflows"),
            db: PathBuf::from("handoff.db"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            synchronous: Synchronous::Full,
            max_body_bytes: 1024 * 1024,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            log_format: LogFormat::Human,
            public_url: None,
            watch: true,
            secrets: Secrets::default(),
            people: Vec::new(),
            health: crate::health::Targets::default(),
            crm: Default::default(),
            delivery: Default::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Webhook requests taken at once by default: far above what a CRM keeps
/// in flight while the disk keeps up (a few dozen at 10,000 events/s), and
/// with the default body limit at most 256 MiB of bodies held.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// SQLite's `synchronous` pragma, as far as we allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit reaches the disk before the request is acknowledged: an
    /// acknowledged event survives a power cut. The default.
    Full,
    /// In WAL mode, a commit survives a crash of the process but the last
    /// commits may be lost on a power cut; faster.
    Normal,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines (the default).
    Human,
    /// One JSON object a line, for a log collector.
    Json,
}

/// The secrets, read from the environment only. Each prints as `[redacted]`.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// `HANDOFF_API_TOKEN`: the bearer token of the API.
    pub api_token: Option<Secret>,
    /// `HANDOFF_GENERIC_SECRET`: the `whsec_…` signing secret of
    /// `POST /hooks/generic`; when set, a valid signature is required.
    pub generic_secret: Option<Secret>,
    /// `HANDOFF_HUBSPOT_CLIENT_SECRET`: verifies HubSpot's signatures.
    pub hubspot_client_secret: Option<Secret>,
    /// `HANDOFF_PIPEDRIVE_USER`: basic-auth user of Pipedrive's webhooks.
    pub pipedrive_user: Option<Secret>,
    /// `HANDOFF_PIPEDRIVE_PASSWORD`: basic-auth password of Pipedrive's webhooks.
    pub pipedrive_password: Option<Secret>,
    /// `HANDOFF_HUBSPOT_TOKEN`: the private app's access token: reads records
    /// before deciding (hydration), creates tasks and updates deals (delivery).
    pub hubspot_token: Option<Secret>,
    /// `HANDOFF_PIPEDRIVE_API_TOKEN`: the API token: reads deals before
    /// deciding (hydration), adds activities and updates deals (delivery).
    pub pipedrive_api_token: Option<Secret>,
    /// `HANDOFF_OUTBOUND_SECRET`: the `whsec_…` key outbound webhooks are
    /// signed with.
    pub outbound_secret: Option<Secret>,
    /// `HANDOFF_SLACK_WEBHOOK_URL`: the incoming webhook's URL (it carries
    /// its own secret, so it is not written in handoff.toml).
    pub slack_webhook_url: Option<Secret>,
}

/// Every secret variable, with the config file key people might try.
const SECRET_VARS: [(&str, &str); 9] = [
    ("HANDOFF_API_TOKEN", "api_token"),
    ("HANDOFF_GENERIC_SECRET", "generic_secret"),
    ("HANDOFF_HUBSPOT_CLIENT_SECRET", "hubspot_client_secret"),
    ("HANDOFF_PIPEDRIVE_USER", "pipedrive_user"),
    ("HANDOFF_PIPEDRIVE_PASSWORD", "pipedrive_password"),
    ("HANDOFF_HUBSPOT_TOKEN", "hubspot_token"),
    ("HANDOFF_PIPEDRIVE_API_TOKEN", "pipedrive_api_token"),
    ("HANDOFF_OUTBOUND_SECRET", "outbound_secret"),
    ("HANDOFF_SLACK_WEBHOOK_URL", "slack_webhook_url"),
];

impl Secrets {
    /// The generic hook's signing key: the bytes of `HANDOFF_GENERIC_SECRET`
    /// after decoding, or `None` when it is not set.
    pub fn generic_signing_key(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        self.generic_secret
            .as_ref()
            .map(|s| decode_whsec("HANDOFF_GENERIC_SECRET", s))
            .transpose()
    }
}

/// Decodes a Standard Webhooks secret: `whsec_` followed by base64.
pub fn decode_whsec(var: &str, secret: &Secret) -> Result<Vec<u8>, ConfigError> {
    let value = secret.expose();
    let body = value.strip_prefix("whsec_").unwrap_or(value);
    match base64::engine::general_purpose::STANDARD.decode(body) {
        Ok(key) if !key.is_empty() => Ok(key),
        Ok(_) => Err(ConfigError::BadSigningSecret {
            var: var.to_string(),
            reason: "it has nothing after `whsec_`".to_string(),
        }),
        // Not the decoder's message: it quotes the offending character,
        // which is part of the secret.
        Err(_) => Err(ConfigError::BadSigningSecret {
            var: var.to_string(),
            reason: "what follows `whsec_` is not base64".to_string(),
        }),
    }
}

/// Flags given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--workflows DIR`.
    pub workflows: Option<PathBuf>,
    /// `--db FILE`.
    pub db: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--log-format human|json`.
    pub log_format: Option<LogFormat>,
}

/// Why the settings could not be read or are unsafe to run with.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read the config file `{path}`: {reason}")]
    #[diagnostic(
        code(config::read),
        help("check the path given with --config or HANDOFF_CONFIG")
    )]
    ReadFile { path: String, reason: String },
    /// The config file is not valid TOML or has an unknown key.
    #[error("the config file `{path}` is not valid: {reason}")]
    #[diagnostic(
        code(config::parse),
        help("the keys are workflows, db, listen, synchronous, max_body_bytes, max_in_flight, log_format, public_url, watch, trusted_proxies, the CRM mappings [hubspot] and [pipedrive], [delivery], [health] and [people.NAME] with token_file (see the README's Operations section)")
    )]
    ParseFile { path: String, reason: String },
    /// A secret was written into the config file.
    #[error("`{key}` is a secret and cannot be set in the config file `{path}`")]
    #[diagnostic(
        code(config::secret_in_file),
        help("remove `{key}` from the file and set {var} in the environment, or {var}_FILE to the path of a file holding it")
    )]
    SecretInFile {
        path: String,
        key: String,
        var: String,
    },
    /// A setting has a value of the wrong form.
    #[error("{origin}: {problem}")]
    #[diagnostic(code(config::value), help("{help}"))]
    BadValue {
        /// Where the value came from (`--listen`, `HANDOFF_LISTEN`,
        /// `listen in handoff.toml`).
        origin: String,
        problem: String,
        help: String,
    },
    /// A secret is given both directly and as a file.
    #[error("both {var} and {var}_FILE are set")]
    #[diagnostic(code(config::secret_twice), help("keep one of the two"))]
    SecretTwice { var: String },
    /// The file named by a `*_FILE` variable could not be read.
    #[error("cannot read {var}_FILE (`{path}`): {reason}")]
    #[diagnostic(
        code(config::secret_file),
        help("point {var}_FILE at a readable file holding only the secret")
    )]
    SecretFile {
        var: String,
        path: String,
        reason: String,
    },
    /// A secret variable is set but empty.
    #[error("{var} is set but empty")]
    #[diagnostic(code(config::secret_empty), help("set it to the secret, or unset it"))]
    EmptySecret { var: String },
    /// A `whsec_` signing secret does not decode.
    #[error("{var} is not a valid signing secret: {reason}")]
    #[diagnostic(
        code(config::signing_secret),
        help("copy the secret exactly as the sender shows it: `whsec_` followed by base64")
    )]
    BadSigningSecret { var: String, reason: String },
    /// The API would be reachable from the network without a token.
    #[error("refusing to listen on {addr} without an API token: anyone who can reach this address could read and change handoffs")]
    #[diagnostic(
        code(config::no_token),
        help("set HANDOFF_API_TOKEN (or HANDOFF_API_TOKEN_FILE) to a long random value, e.g. `openssl rand -hex 32`, or listen on a loopback address such as 127.0.0.1:8080")
    )]
    OpenToNetwork { addr: SocketAddr },
    /// A token short enough to guess, on an address other machines reach.
    #[error("refusing to listen on {addr} with {var} only {len} characters long: anyone who can reach this address could guess it by trying")]
    #[diagnostic(
        code(config::weak_token),
        help("set {var} to at least 16 characters of a long random value, e.g. `openssl rand -hex 32`")
    )]
    WeakToken {
        addr: SocketAddr,
        var: String,
        len: usize,
    },
}

/// The fewest characters a token may have on an address other machines
/// reach: guessing is slowed (`http::guesses`), but a short token would
/// still fall to a patient guesser.
pub const MIN_NETWORK_TOKEN_CHARS: usize = 16;

/// Where a value came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    File { key: &'static str, path: String },
    Env(&'static str),
    Flag(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { key, path } => write!(f, "`{key}` in `{path}`"),
            Origin::Env(var) => f.write_str(var),
            Origin::Flag(flag) => f.write_str(flag),
        }
    }
}

/// The config file's keys (secrets are refused before this is read).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    workflows: Option<PathBuf>,
    db: Option<PathBuf>,
    listen: Option<String>,
    synchronous: Option<String>,
    max_body_bytes: Option<u64>,
    max_in_flight: Option<u64>,
    log_format: Option<String>,
    public_url: Option<String>,
    watch: Option<bool>,
    people: Option<std::collections::BTreeMap<String, people::PersonFile>>,
    health: Option<crate::health::Targets>,
    // Read by `Mapping::from_table` (the CRM mapping).
    #[allow(dead_code)]
    hubspot: Option<toml::Table>,
    #[allow(dead_code)]
    pipedrive: Option<toml::Table>,
    /// Read by `delivery::DeliverySettings::from_file`.
    delivery: Option<toml::Table>,
    trusted_proxies: Option<Vec<String>>,
}

impl Settings {
    /// Reads the settings from the config file, the process environment
    /// and `flags`.
    pub fn load(flags: &Overrides) -> Result<Settings, ConfigError> {
        Settings::load_with_vars(flags, |name| std::env::var(name).ok(), std::env::vars())
    }

    /// [`Settings::load`] for a command that only reads the database
    /// (`handoff health`, `outbox`, `demo`): no secret and no person's
    /// token is read, so `secrets` and `people` stay empty. Such a command
    /// is run by people who may not be allowed to read the server's secret
    /// files (a `token_file` readable only by the service's user), and it
    /// has no use for them.
    pub fn load_without_secrets(flags: &Overrides) -> Result<Settings, ConfigError> {
        Settings::read(
            flags,
            |name| std::env::var(name).ok(),
            None::<std::iter::Empty<(String, String)>>,
        )
    }

    /// Reads the settings with `env` standing for the environment (tests
    /// pass a map instead of changing the process's variables).
    pub fn load_with(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        Settings::load_with_vars(flags, env, std::iter::empty())
    }

    /// [`Settings::load_with`], with `vars` listing the environment's
    /// variables (people's `HANDOFF_TOKEN_<NAME>` are found by listing).
    pub fn load_with_vars(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        Settings::read(flags, env, Some(vars))
    }

    /// The settings; secrets and people's tokens only with `vars` (the
    /// environment's variables, where people's variables are found).
    fn read(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
        vars: Option<impl Iterator<Item = (String, String)>>,
    ) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        let mut declared = Vec::new();

        // The file: --config, else HANDOFF_CONFIG, else ./handoff.toml if
        // it exists. Paths in it are relative to the file's folder, so the
        // server reads the same files whatever folder it is started from.
        let named = flags
            .config
            .clone()
            .or_else(|| env("HANDOFF_CONFIG").map(PathBuf::from));
        let file = match named {
            Some(p) => Some(p),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        if let Some(path) = file {
            declared = s.apply_file(&path, vars.is_some())?;
        }

        s.apply_env(&env)?;
        s.apply_flags(flags)?;
        if let Some(vars) = vars {
            s.secrets = read_secrets(&env)?;
            s.people = people::resolve(declared, vars, &env)?;
        }
        Ok(s)
    }

    /// Applies the file; returns the people it declares, with the tokens
    /// of their files when `tokens` (else none: nothing secret is read).
    fn apply_file(
        &mut self,
        path: &Path,
        tokens: bool,
    ) -> Result<Vec<(String, Option<Secret>)>, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::ReadFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
            path: shown.clone(),
            reason: e.message().to_string(),
        })?;
        if let Some((var, key)) = SECRET_VARS.iter().find(|(_, key)| table.contains_key(*key)) {
            return Err(ConfigError::SecretInFile {
                path: shown,
                key: key.to_string(),
                var: var.to_string(),
            });
        }
        self.crm = crate::runtime::adapters::mapping::Mapping::from_table(&table, &shown).map_err(
            |e| ConfigError::ParseFile {
                path: shown.clone(),
                reason: e.to_string(),
            },
        )?;
        // A person's token itself in the file: refused like any secret.
        if let Some(people) = table.get("people").and_then(|p| p.as_table()) {
            for (name, person) in people {
                if person.as_table().is_some_and(|t| t.contains_key("token")) {
                    return Err(ConfigError::SecretInFile {
                        path: shown,
                        key: format!("people.\"{name}\".token"),
                        var: people::var_name(name),
                    });
                }
            }
        }
        let file: FileSettings =
            table
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::ParseFile {
                    path: shown.clone(),
                    reason: e.message().to_string(),
                })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let origin = |key| Origin::File {
            key,
            path: shown.clone(),
        };
        if let Some(p) = file.workflows {
            self.workflows = base.join(p);
        }
        if let Some(p) = file.db {
            self.db = base.join(p);
        }
        if let Some(v) = file.listen {
            self.listen = parse_listen(&v, origin("listen"))?;
        }
        if let Some(v) = file.synchronous {
            self.synchronous = parse_synchronous(&v, origin("synchronous"))?;
        }
        if let Some(v) = file.max_body_bytes {
            self.max_body_bytes = body_limit(v, origin("max_body_bytes"))?;
        }
        if let Some(v) = file.max_in_flight {
            self.max_in_flight = in_flight_limit(v, origin("max_in_flight"))?;
        }
        if let Some(v) = file.log_format {
            self.log_format = parse_log_format(&v, origin("log_format"))?;
        }
        if let Some(v) = file.public_url {
            self.public_url = Some(parse_public_url(&v, origin("public_url"))?);
        }
        if let Some(v) = file.watch {
            self.watch = v;
        }
        if let Some(v) = file.trusted_proxies {
            self.trusted_proxies =
                parse_proxies(v.iter().map(String::as_str), origin("trusted_proxies"))?;
        }
        if let Some(t) = file.health {
            self.health = t;
        }
        if let Some(t) = file.delivery {
            self.delivery = super::delivery::DeliverySettings::from_file(t, &shown)?;
        }
        if !tokens {
            return Ok(Vec::new());
        }
        people::from_file(file.people.unwrap_or_default(), base, &shown)
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("HANDOFF_WORKFLOWS") {
            self.workflows = PathBuf::from(v);
        }
        if let Some(v) = env("HANDOFF_DB") {
            self.db = PathBuf::from(v);
        }
        if let Some(v) = env("HANDOFF_LISTEN") {
            self.listen = parse_listen(&v, Origin::Env("HANDOFF_LISTEN"))?;
        }
        if let Some(v) = env("HANDOFF_SYNCHRONOUS") {
            self.synchronous = parse_synchronous(&v, Origin::Env("HANDOFF_SYNCHRONOUS"))?;
        }
        if let Some(v) = env("HANDOFF_MAX_BODY_BYTES") {
            let origin = Origin::Env("HANDOFF_MAX_BODY_BYTES");
            let n = v.trim().parse::<u64>().map_err(|_| ConfigError::BadValue {
                origin: origin.to_string(),
                problem: format!("`{v}` is not a number of bytes"),
                help: "give a whole number, e.g. 1048576 for 1 MiB".to_string(),
            })?;
            self.max_body_bytes = body_limit(n, origin)?;
        }
        if let Some(v) = env("HANDOFF_MAX_IN_FLIGHT") {
            let origin = Origin::Env("HANDOFF_MAX_IN_FLIGHT");
            let n = v.trim().parse::<u64>().map_err(|_| ConfigError::BadValue {
                origin: origin.to_string(),
                problem: format!("`{v}` is not a number of requests"),
                help: format!("give a whole number, e.g. {DEFAULT_MAX_IN_FLIGHT}"),
            })?;
            self.max_in_flight = in_flight_limit(n, origin)?;
        }
        if let Some(v) = env("HANDOFF_TRUSTED_PROXIES") {
            self.trusted_proxies = parse_proxies(
                v.split(',').filter(|p| !p.trim().is_empty()),
                Origin::Env("HANDOFF_TRUSTED_PROXIES"),
            )?;
        }
        if let Some(v) = env("HANDOFF_LOG_FORMAT") {
            self.log_format = parse_log_format(&v, Origin::Env("HANDOFF_LOG_FORMAT"))?;
        }
        if let Some(v) = env("HANDOFF_PUBLIC_URL") {
            self.public_url = Some(parse_public_url(&v, Origin::Env("HANDOFF_PUBLIC_URL"))?);
        }
        if let Some(v) = env("HANDOFF_WATCH") {
            self.watch = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::BadValue {
                        origin: "HANDOFF_WATCH".to_string(),
                        problem: format!("`{v}` is not true or false"),
                        help: "use `true` or `false`".to_string(),
                    })
                }
            };
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Overrides) -> Result<(), ConfigError> {
        if let Some(p) = &flags.workflows {
            self.workflows = p.clone();
        }
        if let Some(p) = &flags.db {
            self.db = p.clone();
        }
        if let Some(v) = &flags.listen {
            self.listen = parse_listen(v, Origin::Flag("--listen"))?;
        }
        if let Some(f) = flags.log_format {
            self.log_format = f;
        }
        Ok(())
    }

    /// The checks that involve several settings: run before listening.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_listener(self.listen)?;
        self.secrets.generic_signing_key()?;
        self.delivery.validate(&self.secrets)?;
        Ok(())
    }

    /// Refuses an address reachable from other machines when no API token
    /// is set. [`crate::runtime::serve::run`] checks the address it was
    /// actually given, which may differ from [`Settings::listen`].
    pub fn validate_listener(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if addr.ip().is_loopback() {
            return Ok(());
        }
        let Some(api) = &self.secrets.api_token else {
            return Err(ConfigError::OpenToNetwork { addr });
        };
        // The Pipedrive hook's password is not slowed per address (see
        // `adapters::pipedrive_hook`), so it must be as long as a token.
        let pipedrive = self
            .secrets
            .pipedrive_password
            .as_ref()
            .map(|p| ("HANDOFF_PIPEDRIVE_PASSWORD".to_string(), p));
        let tokens = std::iter::once((SECRET_VARS[0].0.to_string(), api))
            .chain(
                self.people
                    .iter()
                    .map(|p| (people::var_name(&p.name), &p.token)),
            )
            .chain(pipedrive);
        for (var, token) in tokens {
            let len = token.expose().chars().count();
            if len < MIN_NETWORK_TOKEN_CHARS {
                return Err(ConfigError::WeakToken { addr, var, len });
            }
        }
        Ok(())
    }

    /// The address people reach the server at.
    pub fn public_url(&self) -> String {
        self.public_url_at(self.listen)
    }

    /// The address people reach the server at, once it listens on `bound`:
    /// `public_url` when set, else `http://` and the address bound (with
    /// `--listen 127.0.0.1:0`, the port the system picked: links made with
    /// the configured port 0 lead nowhere).
    pub fn public_url_at(&self, bound: std::net::SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

/// Reads every secret from `NAME` or the file named by `NAME_FILE`.
fn read_secrets(env: &impl Fn(&str) -> Option<String>) -> Result<Secrets, ConfigError> {
    Ok(Secrets {
        api_token: read_secret(env, SECRET_VARS[0].0)?,
        generic_secret: read_secret(env, SECRET_VARS[1].0)?,
        hubspot_client_secret: read_secret(env, SECRET_VARS[2].0)?,
        pipedrive_user: read_secret(env, SECRET_VARS[3].0)?,
        pipedrive_password: read_secret(env, SECRET_VARS[4].0)?,
        hubspot_token: read_secret(env, SECRET_VARS[5].0)?,
        pipedrive_api_token: read_secret(env, SECRET_VARS[6].0)?,
        outbound_secret: read_secret(env, SECRET_VARS[7].0)?,
        slack_webhook_url: read_secret(env, SECRET_VARS[8].0)?,
    })
}

/// One secret from `var` or the file named by `var_FILE`.
fn read_secret(
    env: &impl Fn(&str) -> Option<String>,
    var: &str,
) -> Result<Option<Secret>, ConfigError> {
    let direct = env(var);
    let file_var = format!("{var}_FILE");
    let from_file = env(&file_var);
    let value = match (direct, from_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::SecretTwice {
                var: var.to_string(),
            })
        }
        (Some(v), None) => v,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::SecretFile {
                var: var.to_string(),
                path: path.clone(),
                reason: e.to_string(),
            })?;
            // Files written by `echo` end in a newline that is not
            // part of the secret.
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Err(ConfigError::EmptySecret {
            var: var.to_string(),
        });
    }
    Ok(Some(Secret::new(value)))
}

fn parse_listen(value: &str, origin: Origin) -> Result<SocketAddr, ConfigError> {
    let v = value.trim();
    // `localhost:8080` is what people type; it means the IPv4 loopback.
    let v = match v.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => v.to_string(),
    };
    v.parse().map_err(|_| ConfigError::BadValue {
        origin: origin.to_string(),
        problem: format!("`{value}` is not an address with a port"),
        help: "write an IP address and a port, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080"
            .to_string(),
    })
}

fn parse_synchronous(value: &str, origin: Origin) -> Result<Synchronous, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "full" => Ok(Synchronous::Full),
        "normal" => Ok(Synchronous::Normal),
        _ => Err(ConfigError::BadValue {
            origin: origin.to_string(),
            problem: format!("`{value}` is not a synchronous mode"),
            help: "use `full` (every acknowledged event survives a power cut) or `normal` (faster; survives a crash of the process)".to_string(),
        }),
    }
}

fn parse_log_format(value: &str, origin: Origin) -> Result<LogFormat, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        _ => Err(ConfigError::BadValue {
            origin: origin.to_string(),
            problem: format!("`{value}` is not a log format"),
            help: "use `human` or `json`".to_string(),
        }),
    }
}

fn parse_public_url(value: &str, origin: Origin) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    if (v.starts_with("http://") || v.starts_with("https://")) && !v.contains(char::is_whitespace) {
        Ok(v.to_string())
    } else {
        Err(ConfigError::BadValue {
            origin: origin.to_string(),
            problem: format!("`{value}` is not an http or https URL"),
            help: "write the full address people open, e.g. https://handoff.example.com"
                .to_string(),
        })
    }
}

fn body_limit(n: u64, origin: Origin) -> Result<usize, ConfigError> {
    match usize::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::BadValue {
            origin: origin.to_string(),
            problem: format!("{n} is not a usable body limit"),
            help: "give a positive number of bytes, e.g. 1048576 for 1 MiB".to_string(),
        }),
    }
}

/// `trusted_proxies`: each an address (`10.0.0.2`, `::1`) or a block
/// (`10.0.0.0/8`, `fd00::/8`).
fn parse_proxies<'a>(
    values: impl Iterator<Item = &'a str>,
    origin: Origin,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    values
        .map(|v| {
            let v = v.trim();
            v.parse::<ipnet::IpNet>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| ConfigError::BadValue {
                    origin: origin.to_string(),
                    problem: format!("`{v}` is not an address or a block of addresses"),
                    help: "give the reverse proxy's address, e.g. 10.0.0.2, or its block, e.g. 10.0.0.0/8 (an IPv6 one such as fd00::/8 too); several are a list in the file and comma-separated in the environment".to_string(),
                })
        })
        .collect()
}

fn in_flight_limit(n: u64, origin: Origin) -> Result<usize, ConfigError> {
    // Tokio's semaphore holds at most usize::MAX >> 3 permits.
    match usize::try_from(n) {
        Ok(n) if n > 0 && n <= tokio::sync::Semaphore::MAX_PERMITS => Ok(n),
        _ => Err(ConfigError::BadValue {
            origin: origin.to_string(),
            problem: format!("{n} is not a usable number of requests in flight"),
            help: format!(
                "give a positive whole number, e.g. {DEFAULT_MAX_IN_FLIGHT} (the default)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::default();
        assert_eq!(s.workflows, PathBuf::from("workflows"));
        assert_eq!(s.db, PathBuf::from("handoff.db"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.synchronous, Synchronous::Full);
        assert_eq!(s.public_url(), "http://127.0.0.1:8080");
        assert!(s.validate().is_ok());
    }

    #[test]
    fn max_in_flight_comes_from_the_file_or_the_environment_and_must_be_positive() {
        assert_eq!(Settings::default().max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        let (_dir, path) = config_file("max_in_flight = 64\n");
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let s = Settings::load_with(&flags, env(&[])).unwrap();
        assert_eq!(s.max_in_flight, 64);
        let s = Settings::load_with(&flags, env(&[("HANDOFF_MAX_IN_FLIGHT", "8")])).unwrap();
        assert_eq!(s.max_in_flight, 8, "the environment wins over the file");
        for bad in ["0", "many", "-3"] {
            let err = Settings::load_with(
                &Overrides::default(),
                env(&[("HANDOFF_MAX_IN_FLIGHT", bad)]),
            )
            .unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadValue { origin, .. } if origin == "HANDOFF_MAX_IN_FLIGHT"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn trusted_proxies_come_from_the_file_or_the_environment_and_name_a_bad_entry() {
        assert!(Settings::default().trusted_proxies.is_empty());
        let (_dir, path) = config_file("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n");
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let s = Settings::load_with(&flags, env(&[])).unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "::1/128"]);
        let s = Settings::load_with(
            &flags,
            env(&[("HANDOFF_TRUSTED_PROXIES", " 192.0.2.7 , 172.16.5.9/12,")]),
        )
        .unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(|n| n.to_string()).collect();
        // The environment wins; a block is kept by its network address.
        assert_eq!(shown, ["192.0.2.7/32", "172.16.0.0/12"]);
        let err = Settings::load_with(
            &Overrides::default(),
            env(&[("HANDOFF_TRUSTED_PROXIES", "10.0.0.2,proxy.internal")]),
        )
        .unwrap_err();
        let help = miette::Diagnostic::help(&err).map(|h| h.to_string());
        let text = format!("{err} {}", help.unwrap_or_default());
        assert!(text.contains("HANDOFF_TRUSTED_PROXIES"), "{text}");
        assert!(
            text.contains("`proxy.internal` is not an address"),
            "{text}"
        );
        assert!(
            text.contains("10.0.0.0/8"),
            "the help shows the form: {text}"
        );
    }

    #[test]
    fn file_paths_are_relative_to_the_file() {
        let (dir, path) = config_file("workflows = \"rules\"\ndb = \"/var/lib/h.db\"\n");
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let s = Settings::load_with(&flags, env(&[])).unwrap();
        assert_eq!(s.workflows, dir.path().join("rules"));
        assert_eq!(s.db, PathBuf::from("/var/lib/h.db"));
    }

    #[test]
    fn a_secret_in_the_file_is_refused_without_echoing_it() {
        let (_dir, path) = config_file("api_token = \"tok-in-file\"\n");
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let err = Settings::load_with(&flags, env(&[])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::SecretInFile { var, .. } if var == "HANDOFF_API_TOKEN")
        );
        assert!(!err.to_string().contains("tok-in-file"));
    }

    #[test]
    fn the_crm_mapping_is_read_from_the_file_and_a_secret_in_it_refused() {
        let (_dir, path) = config_file(
            "[hubspot.objects.deal]\nobject_type = \"deals\"\n[hubspot.objects.deal.properties]\ndealstage = \"stage\"\n[hubspot.owners]\n\"7\" = \"ana@example.com\"\n",
        );
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let s = Settings::load_with(&flags, env(&[])).unwrap();
        use crate::runtime::adapters::mapping::Crm;
        assert_eq!(
            s.crm.property_for(Crm::HubSpot, "deal", "stage"),
            Some("dealstage")
        );
        assert_eq!(
            s.crm.crm_user_id(Crm::HubSpot, "ana@example.com"),
            Some("7")
        );
        assert!(s.crm.pipedrive.is_none());

        let (_dir, path) = config_file("[hubspot]\nclient_secret = \"shh-do-not-echo\"\n");
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let err = Settings::load_with(&flags, env(&[])).unwrap_err();
        assert!(err.to_string().contains("client_secret"), "{err}");
        assert!(!err.to_string().contains("shh-do-not-echo"), "{err}");
    }

    #[test]
    fn people_tokens_come_from_their_files_or_variables_never_the_file_itself() {
        let (dir, path) = config_file(
            "[people.\"ana@example.com\"]\ntoken_file = \"ana.token\"\n[people.\"sam@example.com\"]\n",
        );
        std::fs::write(dir.path().join("ana.token"), "tok-ana\n").unwrap();
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let vars = [("HANDOFF_TOKEN_SAM", "tok-sam")];
        let s = Settings::load_with_vars(
            &flags,
            env(&vars),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        let people: Vec<(&str, &str)> = s
            .people
            .iter()
            .map(|p| (p.name.as_str(), p.token.expose()))
            .collect();
        assert_eq!(
            people,
            [
                ("ana@example.com", "tok-ana"),
                ("sam@example.com", "tok-sam")
            ]
        );
        assert!(!format!("{s:?}").contains("tok-"));

        let (_dir, path) = config_file("[people.\"ana@example.com\"]\ntoken = \"tok-in-file\"\n");
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let err = Settings::load_with(&flags, env(&[])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::SecretInFile { var, .. } if var == "HANDOFF_TOKEN_ANA"),
            "{err:?}"
        );
        assert!(!err.to_string().contains("tok-in-file"));
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let (_dir, path) = config_file("listn = \"0.0.0.0:1\"\n");
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let err = Settings::load_with(&flags, env(&[])).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn a_bad_value_names_where_it_came_from() {
        let err = Settings::load_with(
            &Overrides::default(),
            env(&[("HANDOFF_SYNCHRONOUS", "sometimes")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "HANDOFF_SYNCHRONOUS: `sometimes` is not a synchronous mode"
        );
        let flags = Overrides {
            listen: Some("8080".into()),
            ..Overrides::default()
        };
        let err = Settings::load_with(&flags, env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--listen: `8080` is not an address with a port"
        );
    }

    #[test]
    fn secrets_come_from_the_variable_or_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "from-file\n").unwrap();
        let s = Settings::load_with(
            &Overrides::default(),
            env(&[
                ("HANDOFF_API_TOKEN_FILE", token_file.to_str().unwrap()),
                ("HANDOFF_PIPEDRIVE_USER", "pd-user"),
            ]),
        )
        .unwrap();
        assert_eq!(s.secrets.api_token.as_ref().unwrap().expose(), "from-file");
        assert_eq!(
            s.secrets.pipedrive_user.as_ref().unwrap().expose(),
            "pd-user"
        );
        assert!(s.secrets.generic_secret.is_none());
        // The whole settings print without any secret.
        let shown = format!("{s:?}");
        assert!(!shown.contains("from-file") && !shown.contains("pd-user"));

        let err = Settings::load_with(
            &Overrides::default(),
            env(&[
                ("HANDOFF_API_TOKEN", "a"),
                ("HANDOFF_API_TOKEN_FILE", token_file.to_str().unwrap()),
            ]),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::SecretTwice { .. }));
        let err = Settings::load_with(&Overrides::default(), env(&[("HANDOFF_API_TOKEN", "")]))
            .unwrap_err();
        assert!(matches!(err, ConfigError::EmptySecret { .. }));
    }

    #[test]
    fn a_signing_secret_that_does_not_decode_names_the_variable() {
        let s = Settings::load_with(
            &Overrides::default(),
            env(&[("HANDOFF_GENERIC_SECRET", "whsec_not base64!!")]),
        )
        .unwrap();
        let err = s.validate().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HANDOFF_GENERIC_SECRET is not a valid signing secret"),
            "{err}"
        );
        assert!(!err.to_string().contains("not base64!!"));

        let good = Settings::load_with(
            &Overrides::default(),
            env(&[(
                "HANDOFF_GENERIC_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )]),
        )
        .unwrap();
        assert_eq!(
            good.secrets.generic_signing_key().unwrap().unwrap().len(),
            24
        );
    }

    #[test]
    fn a_network_address_needs_a_token() {
        let open = Settings::load_with(
            &Overrides::default(),
            env(&[("HANDOFF_LISTEN", "0.0.0.0:8080")]),
        )
        .unwrap();
        let err = open.validate().unwrap_err();
        assert!(matches!(err, ConfigError::OpenToNetwork { .. }));
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("HANDOFF_API_TOKEN"), "{help}");

        let guarded = Settings::load_with(
            &Overrides::default(),
            env(&[
                ("HANDOFF_LISTEN", "0.0.0.0:8080"),
                ("HANDOFF_API_TOKEN", "3f9c0a6e2b7d4185"),
            ]),
        )
        .unwrap();
        assert!(guarded.validate().is_ok());
        // A token short enough to guess, the API's or a person's: refused
        // on the network, naming the variable to change.
        for (api, ana) in [("t0k", "ana-token-41b2e8a9"), ("3f9c0a6e2b7d4185", "ana")] {
            let vars = [
                ("HANDOFF_LISTEN", "0.0.0.0:8080"),
                ("HANDOFF_API_TOKEN", api),
                ("HANDOFF_TOKEN_ANA", ana),
            ];
            let listed = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            let weak = Settings::load_with_vars(&Overrides::default(), env(&vars), listed).unwrap();
            assert_eq!(weak.people.len(), 1);
            let err = weak.validate().unwrap_err();
            let var = if api.len() < 16 {
                "HANDOFF_API_TOKEN"
            } else {
                "HANDOFF_TOKEN_ANA"
            };
            assert!(
                matches!(&err, ConfigError::WeakToken { var: v, len, .. } if v == var && *len == 3),
                "{err:?}"
            );
            let help = miette::Diagnostic::help(&err).unwrap().to_string();
            assert!(help.contains(var) && help.contains("16"), "{help}");
        }
        // The Pipedrive hook's password too: it is not slowed per address.
        let short_password = Settings::load_with(
            &Overrides::default(),
            env(&[
                ("HANDOFF_LISTEN", "0.0.0.0:8080"),
                ("HANDOFF_API_TOKEN", "3f9c0a6e2b7d4185"),
                ("HANDOFF_PIPEDRIVE_USER", "pipedrive"),
                ("HANDOFF_PIPEDRIVE_PASSWORD", "hunter2"),
            ]),
        )
        .unwrap();
        assert!(
            matches!(short_password.validate(), Err(ConfigError::WeakToken { var, .. }) if var == "HANDOFF_PIPEDRIVE_PASSWORD")
        );
        // On loopback a short token is the owner's business.
        let local =
            Settings::load_with(&Overrides::default(), env(&[("HANDOFF_API_TOKEN", "t")])).unwrap();
        assert!(local.validate().is_ok());
        let v6 = Settings::load_with(&Overrides::default(), env(&[("HANDOFF_LISTEN", "[::1]:0")]))
            .unwrap();
        assert!(v6.validate().is_ok());
    }
}
