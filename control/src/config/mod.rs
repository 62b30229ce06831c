//! The Junos configuration dyntun runs from: text (curly-brace or `set` lines) → tokens → raw
//! statements → tree (checked against the grammar) → typed model → commit checks. The rest of
//! the system sees only the validated [`Config`].

mod build;
mod checks;
mod display;
mod error;
mod lexer;
mod manual;
mod model;
mod names;
mod pki_files;
mod queries;
mod raw;
mod schema;
mod secret;
mod tree;

pub use display::DisplayFormat;
pub use error::{ConfigError, ConfigErrors, Origin, Pos};
pub use model::*;
pub use names::{interface_kind, InterfaceKind, UnitName};
pub use pki_files::{check_files, load_ca_profile, load_local_certificate};
pub use queries::{PskSource, ServiceSetView};
pub use secret::Secret;

/// The normalised statements of a configuration, as `--display` prints them. Keys are kept so
/// the display round-trips; they are wiped from memory when the document is dropped.
pub struct Document {
    tree: tree::Node,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Document {{ {} top-level statements }}",
            self.tree.children.len()
        )
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        self.tree.zeroize_secrets();
    }
}

impl Document {
    /// Reads the text (either form) into the tree; grammar errors are returned beside it and
    /// the statements they concern are left out.
    pub fn parse(text: &str) -> (Document, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let (tokens, lex_errors) = lexer::tokenize(text);
        errors.extend(lex_errors.into_iter().map(|e| ConfigError {
            pos: e.pos,
            path: String::new(),
            message: e.message,
        }));
        let statements = if raw::is_set_form(&tokens) {
            raw::parse_set_lines(&tokens, &mut errors)
        } else {
            raw::parse_curly(&tokens, &mut errors)
        };
        let tree = tree::build(&statements, &mut errors);
        wipe_tokens(tokens);
        wipe_statements(statements);
        (Document { tree }, errors)
    }

    pub fn display(&self, format: DisplayFormat) -> String {
        display::render(&self.tree, format)
    }

    /// The typed model and the commit checks' errors.
    pub fn validate(&self) -> (Config, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let config = build::Builder::new(&mut errors).config(&self.tree);
        checks::check(&config, &mut errors);
        (config, errors)
    }
}

/// The tree has its own copies; the intermediate ones may hold keys and are wiped.
fn wipe_tokens(mut tokens: Vec<lexer::Token>) {
    use zeroize::Zeroize;
    for t in &mut tokens {
        t.text.zeroize();
    }
}

fn wipe_statements(statements: Vec<raw::RawStatement>) {
    for s in statements {
        for w in s.words {
            match w {
                raw::RawWord::Word(t) => wipe_tokens(vec![t]),
                raw::RawWord::List(items, _) => wipe_tokens(items),
            }
        }
        if let Some(block) = s.block {
            wipe_statements(block);
        }
    }
}

/// Everything `dyntun check` learns from a text: the document, and the validated model when
/// there is no error at all.
#[derive(Debug)]
pub struct Checked {
    pub document: Document,
    pub result: Result<Config, ConfigErrors>,
}

pub fn check(text: &str) -> Checked {
    let (document, mut errors) = Document::parse(text);
    let (config, model_errors) = document.validate();
    errors.extend(model_errors);
    let result = if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors).sorted())
    };
    Checked { document, result }
}

/// `check` for the raw bytes of a file (not UTF-8 is replaced, then reported as unknown
/// words); the bytes and the text made of them are wiped afterwards, as they hold the keys.
/// Unlike `check`, it also reads the certificate, key and CRL files `security pki` names
/// (relative paths from the current directory), as `dyntun check` must report them.
pub fn check_bytes(mut bytes: Vec<u8>) -> Checked {
    use zeroize::Zeroize;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    let mut checked = check(&text);
    let (config, _) = checked.document.validate();
    let base = std::env::current_dir().unwrap_or_default();
    let file_errors = check_files(&config, &base);
    if !file_errors.is_empty() {
        let mut all = match std::mem::replace(&mut checked.result, Ok(Config::default())) {
            Ok(_) => Vec::new(),
            Err(ConfigErrors(errors)) => errors,
        };
        all.extend(file_errors);
        checked.result = Err(ConfigErrors(all).sorted());
    }
    text.zeroize();
    bytes.zeroize();
    checked
}

/// Parses and validates a configuration; every error, in text order, on failure.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    check(text).result
}
