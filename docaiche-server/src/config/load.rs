//! Loading: figment layers each section's defaults (serde's `default`),
//! then the TOML file, then the `DOCAICHE_*` variables of
//! [`env::VARIABLES`], and extracts [`Config`] from the merged layers.
//!
//! What stays ours, around it: the file is read and parsed by our `toml`
//! (one version in the build, and its syntax errors give the line without
//! echoing it, as the line may hold a secret), scanned for literal
//! secrets, and checked on its own first, so that each of its mistakes is
//! named by TOML key, file and line; each variable is read by the syntax the
//! table gives it and checked on its own, so that every bad one is named.
//! Validation ([`Config::validate`]) comes after, unchanged.

use std::path::{Path, PathBuf};

use docaiche_core::Error;
use figment::Figment;
use figment::error::{Actual, Kind, OneOf};
use figment::providers::Serialized;

use crate::config::env;
use crate::config::validate::{LITERAL_SECRET_REASON, find_literal_secrets};
use crate::config::{Config, ConfigProblems, EnvLookup};

impl Config {
    /// Defaults, then the file named by `config_path` or `DOCAICHE_CONFIG`
    /// (if any), then `DOCAICHE_*` overrides. Does not validate.
    pub(crate) fn load(
        config_path: Option<&Path>,
        env: EnvLookup<'_>,
    ) -> Result<Self, ConfigProblems> {
        let (setting, path) = match config_path {
            Some(path) => ("--config", Some(path.to_path_buf())),
            None => ("DOCAICHE_CONFIG", env("DOCAICHE_CONFIG").map(PathBuf::from)),
        };
        let Some(path) = path else {
            return Self::layered(None, env);
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigProblems::one(setting, format!("cannot read {}: {e}", path.display()))
        })?;
        let file = ConfigFile::parse(&text, Some(&path))?;
        Self::layered(Some(&file), env)
    }

    /// A TOML document over the defaults, as [`Self::load`] layers a file
    /// (without the environment).
    #[cfg(test)]
    pub(crate) fn from_toml_str(text: &str) -> Result<Self, ConfigProblems> {
        let file = ConfigFile::parse(text, None)?;
        Self::layered(Some(&file), &|_| None)
    }

    /// The layers, merged by figment and extracted: defaults, `file`, then
    /// the variables set in `env`.
    fn layered(file: Option<&ConfigFile<'_>>, env: EnvLookup<'_>) -> Result<Self, ConfigProblems> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Serialized::defaults(&file.table));
            if let Err(e) = figment.extract::<Self>() {
                return Err(file.problems(e));
            }
        }
        let mut problems = Vec::new();
        for variable in env::VARIABLES {
            match variable.read(env) {
                None => {}
                Some(Err(reason)) => problems.push(Error::misconfigured(variable.name, reason)),
                Some(Ok(value)) => {
                    let layer = Serialized::default(variable.key, value);
                    match Figment::from(&layer).extract::<Self>() {
                        Ok(_) => figment = figment.merge(layer),
                        Err(e) => problems.extend(
                            e.into_iter()
                                .map(|e| Error::misconfigured(variable.name, describe(&e.kind))),
                        ),
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(ConfigProblems(problems));
        }
        // Each layer extracted on its own; together they can only fail
        // through a check across keys, named by the key serde was at.
        let mut config: Self = figment.extract().map_err(|e| {
            ConfigProblems(
                e.into_iter()
                    .map(|e| Error::misconfigured(key_path(&e.path), describe(&e.kind)))
                    .collect(),
            )
        })?;
        config.literal_secrets = file
            .map(|file| file.literal_secrets.clone())
            .unwrap_or_default();
        Ok(config)
    }
}

/// A configuration file, parsed.
#[derive(Debug)]
struct ConfigFile<'a> {
    /// The text, for line numbers.
    text: &'a str,
    /// Where it was read from; `None` for a string.
    path: Option<&'a Path>,
    /// The parsed document, figment's layer.
    table: toml::Table,
    /// Dotted names of keys that look secret-bearing with a literal value.
    literal_secrets: Vec<String>,
}

impl<'a> ConfigFile<'a> {
    /// Parse `text` (read from `path`); a syntax error is reported by line.
    fn parse(text: &'a str, path: Option<&'a Path>) -> Result<Self, ConfigProblems> {
        let mut file = Self {
            text,
            path,
            table: toml::Table::new(),
            literal_secrets: Vec::new(),
        };
        file.table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|span| file.line_at(span.start));
            let reason = format!("{}{}", file.at(line), e.message().trim_end());
            ConfigProblems::one("config file", reason)
        })?;
        find_literal_secrets(&file.table, "", false, &mut file.literal_secrets);
        Ok(file)
    }

    /// The file's problems in `error` (figment's, for this file alone), each
    /// named by its TOML key, then every literal secret found.
    fn problems(&self, error: figment::Error) -> ConfigProblems {
        let mut problems: Vec<Error> = error
            .into_iter()
            .map(|e| {
                let reason = format!("{}{}", self.at(self.line_of(&e.path)), describe(&e.kind));
                if e.path.is_empty() {
                    Error::misconfigured("config file", reason)
                } else {
                    Error::misconfigured(key_path(&e.path), reason)
                }
            })
            .collect();
        problems.extend(
            self.literal_secrets
                .iter()
                .map(|s| Error::misconfigured(s.clone(), LITERAL_SECRET_REASON)),
        );
        ConfigProblems(problems)
    }

    /// `path: line N: `, as much of it as is known.
    fn at(&self, line: Option<usize>) -> String {
        match (self.path, line) {
            (Some(path), Some(line)) => format!("{}: line {line}: ", path.display()),
            (Some(path), None) => format!("{}: ", path.display()),
            (None, Some(line)) => format!("line {line}: "),
            (None, None) => String::new(),
        }
    }

    /// The line of byte `offset`, from 1.
    fn line_at(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(0, |before| before.matches('\n').count())
            + 1
    }

    /// The line of the value at the key `path` (figment's: table keys and
    /// array indices), or of the deepest part of it that exists.
    fn line_of(&self, path: &[String]) -> Option<usize> {
        let root = toml::de::DeTable::parse(self.text).ok()?;
        let root = toml::de::DeValue::Table(root.into_inner());
        let mut value = &root;
        let mut start = None;
        for segment in path {
            let next = match segment.parse::<usize>() {
                Ok(index) => value.get(index),
                Err(_) => value.get(segment.as_str()),
            };
            let Some(next) = next else { break };
            start = Some(next.span().start);
            value = next.get_ref();
        }
        start.map(|offset| self.line_at(offset))
    }
}

/// A figment key path as the operator writes it: `auth.bindings[0].role`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if segment.parse::<usize>().is_ok() {
            out.push('[');
            out.push_str(segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// What is wrong, in serde's terms, without repeating text from the file or
/// the environment (it may be a misplaced secret).
fn describe(kind: &Kind) -> String {
    match kind {
        Kind::InvalidType(actual, expected) => {
            format!("invalid type: found {}, expected {expected}", found(actual))
        }
        Kind::InvalidValue(actual, expected) => {
            format!(
                "invalid value: found {}, expected {expected}",
                found(actual)
            )
        }
        Kind::UnknownVariant(_, expected) => {
            format!("unknown value, expected {}", OneOf(expected))
        }
        Kind::UnknownField(_, expected) => {
            format!("unknown field, expected {}", OneOf(expected))
        }
        other => other.to_string(),
    }
}

/// What was found instead; text only by its kind.
fn found(actual: &Actual) -> String {
    match actual {
        Actual::Str(_) => "a string".to_owned(),
        Actual::Char(_) => "a character".to_owned(),
        Actual::Bytes(_) => "bytes".to_owned(),
        other => other.to_string(),
    }
}
