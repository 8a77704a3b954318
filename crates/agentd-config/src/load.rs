//! Layering (embedded default or file, then environment) with figment, and
//! translation of figment/serde errors into [`ConfigError`]s.
//!
//! Every layer is a figment provider whose metadata name is the origin used
//! in messages ("agentd.toml", "environment variable AGENTD_QUEUE__WORKERS",
//! "embedded default"). Each environment variable is its own layer, so the
//! tag of any merged value says exactly which variable set it.

use std::path::Path;

use figment::error::{Actual, Kind};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::dur::DUR_EXPECTED;
use crate::error::{ConfigError, ConfigSource, EMBEDDED_ORIGIN};
use crate::keypath::{KeyPath, Seg};
use crate::types::Config;
use crate::validate;

/// Prefix of override variables.
const ENV_PREFIX: &str = "AGENTD_";

/// Sections an environment variable may address; others (`AGENTD_LOG`,
/// `AGENTD_ENCRYPTION_KEY`, ...) belong to someone else and are ignored.
/// Unsupported sections are included so that setting one is reported, not
/// silently dropped.
const ENV_SECTIONS: &[&str] = &[
    "server",
    "store",
    "queue",
    "auth",
    "providers",
    "pricing",
    "agents",
    "rate_limit",
    "telemetry",
    "tenants",
    "mcp",
    "tools",
    "policies",
    "rollout",
];

/// Top-level sections of the design that this version does not implement.
const UNSUPPORTED_SECTIONS: &[&str] = &[];

/// Keys inside supported sections that this version does not implement.
const UNSUPPORTED_SECTION_KEYS: &[(&str, &str)] = &[];

/// Agent keys of the design that this version does not implement.
const UNSUPPORTED_AGENT_KEYS: &[&str] = &[];

/// Origin name of [`Config::from_toml_str`] input.
const STRING_ORIGIN: &str = "TOML string";

/// One configuration layer: a table and the name errors give its source.
struct Layer {
    origin: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The process environment's `AGENTD_*` variables (others are never looked at).
pub(crate) fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| has_prefix(k))
        .collect()
}

fn has_prefix(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

pub(crate) fn load(
    path: Option<&Path>,
    env: &[(String, String)],
) -> Result<(Config, ConfigSource), ConfigError> {
    let (base, source) = match path {
        Some(path) => {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    "file not found".to_owned()
                } else {
                    format!("cannot read file: {e}")
                };
                ConfigError::new(origin.clone(), None, message)
            })?;
            (
                toml_layer(origin, &text)?,
                ConfigSource::File(path.to_path_buf()),
            )
        }
        None => (embedded_layer()?, ConfigSource::Embedded),
    };
    let mut layers = vec![base];
    layers.extend(env_layers(env));
    let config = build(&source.to_string(), layers)?;
    Ok((config, source))
}

pub(crate) fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
    build(
        STRING_ORIGIN,
        vec![toml_layer(STRING_ORIGIN.to_owned(), s)?],
    )
}

/// Parses TOML ourselves (rather than figment's `Toml` provider) for a
/// one-line error with line and column.
fn toml_layer(origin: String, text: &str) -> Result<Layer, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        // toml's messages can span lines ("invalid string\nexpected ..."); keep one line.
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let message = match e.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                format!("invalid TOML at line {line}, column {column}: {message}")
            }
            None => format!("invalid TOML: {message}"),
        };
        ConfigError::new(origin.clone(), None, message)
    })?;
    let dict = to_dict(&table).map_err(|e| ConfigError::new(origin.clone(), None, e))?;
    Ok(Layer { origin, dict })
}

fn to_dict<T: serde::Serialize>(value: &T) -> Result<Dict, String> {
    Value::serialize(value)
        .map_err(|e| e.to_string())?
        .into_dict()
        .ok_or_else(|| "expected a table".to_owned())
}

/// The embedded providers and agents; section defaults come from serde.
fn embedded_layer() -> Result<Layer, ConfigError> {
    #[derive(serde::Serialize)]
    struct Extras {
        providers: std::collections::BTreeMap<String, crate::types::ProviderConfig>,
        agents: Vec<crate::types::AgentConfig>,
    }
    let embedded = Config::embedded();
    let extras = Extras {
        providers: embedded.providers,
        agents: embedded.agents,
    };
    let dict = to_dict(&extras).map_err(|e| ConfigError::new(EMBEDDED_ORIGIN, None, e))?;
    Ok(Layer {
        origin: EMBEDDED_ORIGIN.to_owned(),
        dict,
    })
}

/// `AGENTD_QUEUE__WORKERS=8` -> `{ queue = { workers = 8 } }`, like figment's
/// `Env::prefixed("AGENTD_").split("__")` but from an explicit list, and
/// skipping variables without `__` or outside the known sections.
fn env_layers(env: &[(String, String)]) -> Vec<Layer> {
    let mut vars: Vec<&(String, String)> = env.iter().collect();
    // Deterministic precedence if two spellings of one key are set.
    vars.sort();
    vars.into_iter()
        .filter_map(|(name, raw)| {
            if !has_prefix(name) || name.eq_ignore_ascii_case("AGENTD_CONFIG") {
                return None;
            }
            let rest = name.get(ENV_PREFIX.len()..)?;
            if !rest.contains("__") {
                return None;
            }
            let segs: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if segs.iter().any(String::is_empty) || !ENV_SECTIONS.contains(&segs[0].as_str()) {
                return None;
            }
            // figment's own value syntax: numbers, booleans, arrays, quoted strings.
            let mut value: Value = match raw.parse::<Value>() {
                Ok(v) => v,
                Err(never) => match never {},
            };
            for seg in segs.iter().skip(1).rev() {
                let mut dict = Dict::new();
                dict.insert(seg.clone(), value);
                value = dict.into();
            }
            let mut dict = Dict::new();
            dict.insert(segs[0].clone(), value);
            Some(Layer {
                origin: format!("environment variable {name}"),
                dict,
            })
        })
        .collect()
}

/// Merges the layers, rejects unsupported keys, extracts and validates.
fn build(primary: &str, layers: Vec<Layer>) -> Result<Config, ConfigError> {
    let figment = layers
        .into_iter()
        .fold(Figment::new(), |figment, layer| figment.merge(layer));
    let merged = figment
        .find_value("")
        .map_err(|e| ConfigError::new(primary, None, e.to_string()))?;
    let origins = Origins {
        figment: &figment,
        merged: &merged,
        primary,
    };

    reject_unsupported(&origins)?;

    let config: Config = figment.extract().map_err(|e| origins.translate(e))?;

    validate::check(&config).map_err(|invalid| {
        ConfigError::new(
            origins.origin_of(&invalid.key),
            Some(invalid.key.to_string()),
            invalid.message,
        )
    })?;
    Ok(config)
}

fn reject_unsupported(origins: &Origins<'_>) -> Result<(), ConfigError> {
    let Some(top) = origins.merged.as_dict() else {
        return Ok(());
    };
    let not_supported = |key: KeyPath, what: String| {
        Err(ConfigError::new(
            origins.origin_of(&key),
            Some(key.to_string()),
            format!("{what} is not supported by this version of agentd"),
        ))
    };
    for section in UNSUPPORTED_SECTIONS {
        if top.contains_key(*section) {
            return not_supported(KeyPath::of(&[section]), format!("`[{section}]`"));
        }
    }
    for (section, key) in UNSUPPORTED_SECTION_KEYS {
        if top
            .get(*section)
            .and_then(Value::as_dict)
            .is_some_and(|d| d.contains_key(*key))
        {
            return not_supported(KeyPath::of(&[section, key]), format!("`{section}.{key}`"));
        }
    }
    if let Some(agents) = top.get("agents").and_then(Value::as_array) {
        for (i, agent) in agents.iter().enumerate() {
            let Some(agent) = agent.as_dict() else {
                continue;
            };
            for key in UNSUPPORTED_AGENT_KEYS {
                if agent.contains_key(*key) {
                    return not_supported(
                        KeyPath::of(&["agents"]).index(i).key(key),
                        format!("agent key `{key}`"),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Resolves keys to the layer that supplied them.
struct Origins<'a> {
    figment: &'a Figment,
    merged: &'a Value,
    primary: &'a str,
}

impl Origins<'_> {
    /// The source of the deepest existing value on `key`'s path.
    fn origin_of(&self, key: &KeyPath) -> String {
        let mut value = self.merged;
        let mut tag = value.tag();
        for seg in &key.0 {
            let next = match (seg, value) {
                (Seg::Key(k), Value::Dict(_, d)) => d.get(k),
                (Seg::Index(i), Value::Array(_, a)) => a.get(*i),
                _ => None,
            };
            match next {
                Some(v) => {
                    value = v;
                    tag = v.tag();
                }
                None => break,
            }
        }
        self.figment
            .get_metadata(tag)
            .map(|md| md.name.to_string())
            .unwrap_or_else(|| self.primary.to_owned())
    }

    /// figment's string path to a [`KeyPath`], using the merged tree to tell
    /// array indices from table keys that happen to be numeric.
    fn key_path(&self, path: &[String]) -> KeyPath {
        let mut segs = Vec::with_capacity(path.len());
        let mut value = Some(self.merged);
        for p in path {
            match value {
                Some(Value::Array(_, a)) => match p.parse::<usize>() {
                    Ok(i) => {
                        segs.push(Seg::Index(i));
                        value = a.get(i);
                    }
                    Err(_) => {
                        segs.push(Seg::Key(p.clone()));
                        value = None;
                    }
                },
                Some(Value::Dict(_, d)) => {
                    segs.push(Seg::Key(p.clone()));
                    value = d.get(p);
                }
                _ => {
                    segs.push(Seg::Key(p.clone()));
                    value = None;
                }
            }
        }
        KeyPath(segs)
    }

    fn translate(&self, error: figment::Error) -> ConfigError {
        let mut key = self.key_path(&error.path);
        let message = match &error.kind {
            Kind::UnknownField(field, allowed) => {
                if key.0.last() != Some(&Seg::Key(field.clone())) {
                    key = key.key(field);
                }
                format!("unknown key; allowed keys: {}", allowed.join(", "))
            }
            Kind::MissingField(field) => {
                key = key.key(field);
                "missing required key".to_owned()
            }
            Kind::DuplicateField(field) => {
                key = key.key(field);
                "duplicate key".to_owned()
            }
            Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                format!(
                    "expected {}, found {}",
                    friendly_expected(expected),
                    friendly_actual(actual)
                )
            }
            Kind::InvalidLength(len, expected) => {
                format!(
                    "expected {}, found {len} items",
                    friendly_expected(expected)
                )
            }
            Kind::UnknownVariant(found, allowed) => {
                format!(
                    "unknown value {found:?}, expected one of: {}",
                    allowed.join(", ")
                )
            }
            other => other.to_string(),
        };
        let origin = error
            .metadata
            .as_ref()
            .map(|md| md.name.to_string())
            .unwrap_or_else(|| self.origin_of(&key));
        let key = if key.0.is_empty() {
            None
        } else {
            Some(key.to_string())
        };
        ConfigError::new(origin, key, message)
    }
}

/// serde's expectation strings, in config-file words.
fn friendly_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "an unsigned integer".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "a table".to_owned(),
        "a boolean" | "a string" => expected.to_owned(),
        "variant identifier" => "a string".to_owned(),
        DUR_EXPECTED => DUR_EXPECTED.to_owned(),
        // serde names only the type when an enum gets a non-string; keep in
        // sync with types.rs (checked by a test against the unknown-value list).
        "enum ProviderKind" => "one of: mock, openai, anthropic".to_owned(),
        "enum AuthMode" => "one of: none, api_key, jwt".to_owned(),
        "enum ScriptError" => "one of: rate_limit, timeout, server".to_owned(),
        "enum MemoryStrategy" => "one of: window, all".to_owned(),
        "enum ToolKind" => "one of: webhook".to_owned(),
        e if e.starts_with("struct ") || e.starts_with("a map") => "a table".to_owned(),
        e => e.to_owned(),
    }
}

/// figment's description of what was found, in config-file words.
fn friendly_actual(actual: &Actual) -> String {
    match actual {
        Actual::Bool(b) => format!("boolean {b}"),
        Actual::Unsigned(n) => format!("integer {n}"),
        Actual::Signed(n) => format!("integer {n}"),
        Actual::Float(x) => format!("float {x}"),
        Actual::Char(c) => format!("string {:?}", c.to_string()),
        Actual::Str(s) => format!("string {s:?}"),
        Actual::Seq => "an array".to_owned(),
        Actual::Map => "a table".to_owned(),
        Actual::Unit | Actual::Option => "an empty value".to_owned(),
        other => other.to_string(),
    }
}
