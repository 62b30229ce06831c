//! Tokens of Junos configuration text: words, quoted strings and the punctuation `{ } [ ] ;`.
//! Comments (`#` to the end of the line, `/* … */`) are dropped here.

use super::error::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Word,
    /// A `"…"` string; `text` holds it unescaped.
    Quoted,
    OpenBrace,
    CloseBrace,
    OpenBracket,
    CloseBracket,
    Semicolon,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub text: String,
    pub pos: Pos,
    /// First token of its line: `set` lines are told apart by this.
    pub starts_line: bool,
}

/// A problem in the text itself (an unterminated string or comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub pos: Pos,
    pub message: String,
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    col: u32,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        // Saturating: a gigantic line must not overflow into a panic.
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '{' | '}' | '[' | ']' | ';' | '"')
}

pub fn tokenize(text: &str) -> (Vec<Token>, Vec<LexError>) {
    let mut cur = Cursor {
        chars: text.chars().peekable(),
        line: 1,
        col: 1,
    };
    let mut tokens: Vec<Token> = Vec::new();
    let mut errors = Vec::new();
    let mut last_line = 0u32;
    while let Some(c) = cur.peek() {
        if c.is_whitespace() {
            cur.bump();
            continue;
        }
        let pos = cur.pos();
        let starts_line = pos.line != last_line;
        let punct = match c {
            '{' => Some(TokenKind::OpenBrace),
            '}' => Some(TokenKind::CloseBrace),
            '[' => Some(TokenKind::OpenBracket),
            ']' => Some(TokenKind::CloseBracket),
            ';' => Some(TokenKind::Semicolon),
            _ => None,
        };
        if let Some(kind) = punct {
            cur.bump();
            tokens.push(Token {
                kind,
                text: c.to_string(),
                pos,
                starts_line,
            });
            last_line = pos.line;
            continue;
        }
        if c == '#' {
            while let Some(c) = cur.peek() {
                if c == '\n' {
                    break;
                }
                cur.bump();
            }
            continue;
        }
        if c == '"' {
            cur.bump();
            let mut text = String::new();
            let mut closed = false;
            while let Some(c) = cur.bump() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        if let Some(escaped) = cur.bump() {
                            text.push(escaped);
                        }
                    }
                    _ => text.push(c),
                }
            }
            if !closed {
                errors.push(LexError {
                    pos,
                    message: "unterminated quoted string".into(),
                });
            }
            tokens.push(Token {
                kind: TokenKind::Quoted,
                text,
                pos,
                starts_line,
            });
            last_line = pos.line;
            continue;
        }
        let mut text = String::new();
        while let Some(c) = cur.peek() {
            if !is_word_char(c) {
                break;
            }
            text.push(c);
            cur.bump();
            if text == "/*" {
                break;
            }
        }
        if text == "/*" {
            if !skip_block_comment(&mut cur) {
                errors.push(LexError {
                    pos,
                    message: "unterminated /* comment".into(),
                });
            }
            continue;
        }
        tokens.push(Token {
            kind: TokenKind::Word,
            text,
            pos,
            starts_line,
        });
        last_line = pos.line;
    }
    (tokens, errors)
}

/// Skips to just after the closing `*/`; false when the text ends first.
fn skip_block_comment(cur: &mut Cursor<'_>) -> bool {
    let mut star = false;
    while let Some(c) = cur.bump() {
        if star && c == '/' {
            return true;
        }
        star = c == '*';
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_and_texts(text: &str) -> Vec<(TokenKind, String)> {
        tokenize(text)
            .0
            .into_iter()
            .map(|t| (t.kind, t.text))
            .collect()
    }

    #[test]
    fn words_punctuation_strings_and_comments() {
        let toks = kinds_and_texts(
            "a { b \"x y\\\"z\"; } # gone\n/* also\n gone */ c [ d e ];## SECRET-DATA",
        );
        let texts: Vec<&str> = toks.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["a", "{", "b", "x y\"z", ";", "}", "c", "[", "d", "e", "]", ";"]
        );
        assert_eq!(toks[3].0, TokenKind::Quoted);
    }

    #[test]
    fn positions_are_line_and_character_column() {
        let (toks, errs) = tokenize("a\n  bé c");
        assert!(errs.is_empty());
        assert_eq!(toks[1].pos, Pos { line: 2, col: 3 });
        assert_eq!(toks[2].pos, Pos { line: 2, col: 6 });
        assert!(toks[1].starts_line && !toks[2].starts_line);
    }

    #[test]
    fn unterminated_string_and_comment_are_errors() {
        assert_eq!(tokenize("a \"open").1.len(), 1);
        assert_eq!(tokenize("a /* open").1[0].pos, Pos { line: 1, col: 3 });
    }

    #[test]
    fn a_slash_inside_a_word_is_not_a_comment() {
        assert_eq!(
            kinds_and_texts("ge-0/0/0 0.0.0.0/0"),
            [
                (TokenKind::Word, "ge-0/0/0".to_string()),
                (TokenKind::Word, "0.0.0.0/0".to_string())
            ]
        );
    }
}
