//! Diagnostics: every problem found in a configuration, with the place it points at.

use std::fmt;

/// Where a statement or value starts in the configuration text (1-based, columns in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A statement's place: its position and its path of keywords and names
/// (`services service-set ss1 ipsec-vpn-options local-gateway`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Origin {
    pub pos: Pos,
    pub path: String,
}

impl Origin {
    pub fn new(pos: Pos, path: impl Into<String>) -> Self {
        Origin {
            pos,
            path: path.into(),
        }
    }
}

/// One problem: printed as `LINE:COL: error: PATH: MESSAGE` after the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn at(origin: &Origin, message: impl Into<String>) -> Self {
        ConfigError {
            pos: origin.pos,
            path: origin.path.clone(),
            message: message.into(),
        }
    }

    /// The one-line form `FILE:LINE:COL: error: PATH: MESSAGE`.
    pub fn render(&self, file: &str) -> String {
        let path = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        format!(
            "{file}:{}:{}: error: {path}: {}",
            self.pos.line, self.pos.col, self.message
        )
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("<config>"))
    }
}

/// Every error of one configuration, in the order of the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn push(&mut self, origin: &Origin, message: impl Into<String>) {
        self.0.push(ConfigError::at(origin, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// Sorted by position (stable, so errors at one place keep the order they were found in).
    pub fn sorted(mut self) -> Self {
        self.0.sort_by_key(|e| e.pos);
        self
    }

    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        for e in &self.0 {
            out.push_str(&e.render(file));
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("<config>"))
    }
}

impl std::error::Error for ConfigErrors {}
