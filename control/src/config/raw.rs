//! Statements as written, before the grammar gives them meaning: a run of words (and `[ … ]`
//! lists) ended by `;` or by a `{ … }` block (curly-brace form), or one `set` line.

use super::error::{ConfigError, Pos};
use super::lexer::{Token, TokenKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawWord {
    Word(Token),
    /// `[ a b c ]`: the position is the `[`.
    List(Vec<Token>, Pos),
}

impl RawWord {
    pub fn pos(&self) -> Pos {
        match self {
            RawWord::Word(t) => t.pos,
            RawWord::List(_, pos) => *pos,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawStatement {
    pub words: Vec<RawWord>,
    pub block: Option<Vec<RawStatement>>,
    /// Written as `inactive: …` (or `protect: …`, which only changes who may edit it).
    pub inactive: bool,
    /// A `deactivate …` line (Junos' `display set` prints one per inactive statement): it drops
    /// the statement it names instead of adding one.
    pub deactivate: bool,
}

/// Which of the two textual forms a file uses: `set` lines if its first token is `set`.
pub fn is_set_form(tokens: &[Token]) -> bool {
    tokens
        .first()
        .is_some_and(|t| t.kind == TokenKind::Word && t.text == "set")
}

fn syntax_error(pos: Pos, path: &[String], message: impl Into<String>) -> ConfigError {
    ConfigError {
        pos,
        path: path.join(" "),
        message: message.into(),
    }
}

fn word_text(w: &RawWord) -> String {
    match w {
        RawWord::Word(t) => t.text.clone(),
        RawWord::List(..) => "[…]".to_string(),
    }
}

/// Parses a `[ … ]` list starting at the `[` at `tokens[*i]`; leaves `*i` after the `]`.
fn parse_list(
    tokens: &[Token],
    i: &mut usize,
    path: &[String],
    errors: &mut Vec<ConfigError>,
) -> RawWord {
    let open = tokens[*i].pos;
    *i += 1;
    let mut items = Vec::new();
    while let Some(t) = tokens.get(*i) {
        match t.kind {
            TokenKind::Word | TokenKind::Quoted => {
                items.push(t.clone());
                *i += 1;
            }
            TokenKind::CloseBracket => {
                *i += 1;
                return RawWord::List(items, open);
            }
            _ => break,
        }
    }
    errors.push(syntax_error(open, path, "'[' without a matching ']'"));
    RawWord::List(items, open)
}

/// Curly-brace form: the statements of the whole file.
pub fn parse_curly(tokens: &[Token], errors: &mut Vec<ConfigError>) -> Vec<RawStatement> {
    let mut i = 0;
    let mut path = Vec::new();
    parse_block(tokens, &mut i, &mut path, None, 0, errors)
}

/// Statements until the `}` that closes the block opened at `opened` (or the end of the text at
/// top level). Leaves `*i` after that `}`.
fn parse_block(
    tokens: &[Token],
    i: &mut usize,
    path: &mut Vec<String>,
    opened: Option<Pos>,
    depth: usize,
    errors: &mut Vec<ConfigError>,
) -> Vec<RawStatement> {
    let mut statements = Vec::new();
    let mut words: Vec<RawWord> = Vec::new();
    loop {
        let Some(t) = tokens.get(*i) else {
            if let Some(w) = words.first() {
                errors.push(syntax_error(
                    w.pos(),
                    path,
                    "statement not ended by ';' or a block",
                ));
            }
            if let Some(open) = opened {
                errors.push(syntax_error(
                    open,
                    path,
                    "'{' without a matching '}' before the end of the text",
                ));
            }
            return statements;
        };
        match t.kind {
            TokenKind::Word | TokenKind::Quoted => {
                words.push(RawWord::Word(t.clone()));
                *i += 1;
            }
            TokenKind::OpenBracket => words.push(parse_list(tokens, i, path, errors)),
            TokenKind::CloseBracket => {
                errors.push(syntax_error(t.pos, path, "']' without a matching '['"));
                *i += 1;
            }
            TokenKind::Semicolon => {
                *i += 1;
                if !words.is_empty() {
                    statements.push(make_statement(std::mem::take(&mut words), None));
                }
            }
            TokenKind::OpenBrace => {
                *i += 1;
                if words.is_empty() {
                    errors.push(syntax_error(t.pos, path, "block without a statement name"));
                }
                if depth >= MAX_NESTING {
                    errors.push(syntax_error(
                        t.pos,
                        path,
                        format!("blocks nested deeper than {MAX_NESTING} levels"),
                    ));
                    skip_block(tokens, i);
                    words.clear();
                    continue;
                }
                let path_len = path.len();
                path.extend(words.iter().filter(|w| !is_marker(w)).map(word_text));
                let block = parse_block(tokens, i, path, Some(t.pos), depth + 1, errors);
                path.truncate(path_len);
                if !words.is_empty() {
                    statements.push(make_statement(std::mem::take(&mut words), Some(block)));
                }
            }
            TokenKind::CloseBrace => {
                *i += 1;
                if let Some(w) = words.first() {
                    errors.push(syntax_error(w.pos(), path, "statement not ended by ';'"));
                    words.clear();
                }
                if opened.is_some() {
                    return statements;
                }
                errors.push(syntax_error(t.pos, path, "'}' without a matching '{'"));
            }
        }
    }
}

/// Far deeper than any real configuration (the grammar is about ten levels deep); it bounds
/// the recursion so hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 64;

/// Skips past the `}` matching a `{` just consumed (or to the end of the text).
fn skip_block(tokens: &[Token], i: &mut usize) {
    let mut open = 1usize;
    while let Some(t) = tokens.get(*i) {
        *i += 1;
        match t.kind {
            TokenKind::OpenBrace => open += 1,
            TokenKind::CloseBrace => {
                open -= 1;
                if open == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

fn is_marker(w: &RawWord) -> bool {
    matches!(w, RawWord::Word(t) if t.kind == TokenKind::Word && (t.text == "inactive:" || t.text == "protect:"))
}

fn make_statement(mut words: Vec<RawWord>, block: Option<Vec<RawStatement>>) -> RawStatement {
    let mut inactive = false;
    while words.first().is_some_and(is_marker) {
        if let RawWord::Word(t) = words.remove(0) {
            inactive |= t.text == "inactive:";
        }
    }
    RawStatement {
        words,
        block,
        inactive,
        deactivate: false,
    }
}

/// `set` form: one statement per line that starts with `set`.
pub fn parse_set_lines(tokens: &[Token], errors: &mut Vec<ConfigError>) -> Vec<RawStatement> {
    let mut statements = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let first = &tokens[i];
        i += 1;
        let is_word = first.kind == TokenKind::Word;
        let deactivate = is_word && first.text == "deactivate";
        let command_ok = is_word && (first.text == "set" || deactivate);
        if !command_ok {
            let message = match first.text.as_str() {
                "delete" | "activate" | "insert" | "rename" | "annotate" | "protect" => {
                    format!(
                        "'{}' lines are not supported: write only 'set' (and 'deactivate') lines",
                        first.text
                    )
                }
                _ => format!(
                    "expected a line starting with 'set', found '{}'",
                    first.text
                ),
            };
            errors.push(syntax_error(first.pos, &[], message));
        }
        let mut words = Vec::new();
        let mut path: Vec<String> = Vec::new();
        while let Some(t) = tokens.get(i) {
            if t.starts_line {
                break;
            }
            match t.kind {
                TokenKind::Word | TokenKind::Quoted => {
                    path.push(t.text.clone());
                    words.push(RawWord::Word(t.clone()));
                    i += 1;
                }
                TokenKind::OpenBracket => words.push(parse_list(tokens, &mut i, &path, errors)),
                _ => {
                    errors.push(syntax_error(
                        t.pos,
                        &path,
                        format!("'{}' does not belong in a set line", t.text),
                    ));
                    i += 1;
                }
            }
        }
        if !command_ok {
            continue;
        }
        if words.is_empty() {
            let message = format!("'{}' without a statement", first.text);
            errors.push(syntax_error(first.pos, &[], message));
            continue;
        }
        let mut statement = make_statement(words, None);
        statement.deactivate = deactivate;
        statements.push(statement);
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn curly(text: &str) -> (Vec<RawStatement>, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let s = parse_curly(&tokenize(text).0, &mut errors);
        (s, errors)
    }

    #[test]
    fn nested_blocks_lists_and_inactive() {
        let (s, e) = curly("a b { c [ x y ]; inactive: d; } e;");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(s.len(), 2);
        let block = s[0].block.as_ref().unwrap();
        assert!(matches!(&block[0].words[1], RawWord::List(items, _) if items.len() == 2));
        assert!(block[1].inactive);
    }

    #[test]
    fn every_brace_problem_is_reported() {
        let (_, e) = curly("a { b;\n} }\nc { d");
        let lines: Vec<u32> = e.iter().map(|e| e.pos.line).collect();
        assert_eq!(lines, [2, 3, 3], "{e:?}");
        let (_, e) = curly("a { b c }");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "a");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}{}", "a {".repeat(100_000), "}".repeat(100_000));
        let (s, e) = curly(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("nested deeper"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn set_lines_are_statements() {
        let mut errors = Vec::new();
        let s = parse_set_lines(
            &tokenize("set a b c\nset d [ e f ]\ndelete a\ndeactivate d\n").0,
            &mut errors,
        );
        assert_eq!(s.len(), 3);
        assert!(s[2].deactivate && !s[0].deactivate);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pos.line, 3);
    }
}
