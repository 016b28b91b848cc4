//! Parser for the label selector string syntax.
//!
//! Grammar (whitespace between tokens is ignored):
//!
//! ```text
//! selector    := "" | requirement ("," requirement)*
//! requirement := "!" key
//!              | key
//!              | key ("=" | "==" | "!=" | ">" | "<") value?
//!              | key ("in" | "notin") "(" value? ("," value?)* ")"
//! ```
//!
//! As in apimachinery, an omitted value is the empty string (`a=` means
//! "a equals empty", `a in ()` means "a in {empty}"), and `in`/`notin` are
//! keywords only in operator position (`in=x` is a valid requirement).

use super::{Operator, Requirement, Selector};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    Gt,
    Lt,
    Comma,
    Open,
    Close,
    End,
}

impl Token<'_> {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("{s:?}"),
            Token::Not => "'!'".into(),
            Token::Equals => "'='".into(),
            Token::DoubleEquals => "'=='".into(),
            Token::NotEquals => "'!='".into(),
            Token::Gt => "'>'".into(),
            Token::Lt => "'<'".into(),
            Token::Comma => "','".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::End => "end of string".into(),
        }
    }
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn skip_whitespace(&mut self) {
        let rest = &self.input[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next token and the byte offset where it starts, without consuming it.
    fn peek(&mut self) -> (Token<'a>, usize) {
        self.skip_whitespace();
        let start = self.pos;
        let bytes = self.input.as_bytes();
        let Some(&b) = bytes.get(start) else {
            return (Token::End, start);
        };
        let next = bytes.get(start + 1).copied();
        let token = match (b, next) {
            (b'!', Some(b'=')) => Token::NotEquals,
            (b'!', _) => Token::Not,
            (b'=', Some(b'=')) => Token::DoubleEquals,
            (b'=', _) => Token::Equals,
            (b'>', _) => Token::Gt,
            (b'<', _) => Token::Lt,
            (b',', _) => Token::Comma,
            (b'(', _) => Token::Open,
            (b')', _) => Token::Close,
            _ => {
                let rest = &self.input[start..];
                let len = rest
                    .find(|c: char| c.is_whitespace() || (c.is_ascii() && is_special(c as u8)))
                    .unwrap_or(rest.len());
                Token::Ident(&rest[..len])
            }
        };
        (token, start)
    }

    fn advance(&mut self, token: Token<'a>) {
        self.pos += match token {
            Token::Ident(s) => s.len(),
            Token::NotEquals | Token::DoubleEquals => 2,
            Token::End => 0,
            _ => 1,
        };
    }

    fn next(&mut self) -> (Token<'a>, usize) {
        let (token, at) = self.peek();
        self.advance(token);
        (token, at)
    }

    fn error(&self, position: usize, reason: impl Into<String>) -> Error {
        Error::InvalidSelector {
            input: self.input.to_owned(),
            position,
            reason: reason.into(),
        }
    }

    fn unexpected(&self, found: Token<'_>, at: usize, expected: &str) -> Error {
        self.error(
            at,
            format!("found {}, expected {expected}", found.describe()),
        )
    }

    fn parse(mut self) -> Result<Selector> {
        let mut requirements = Vec::new();
        if self.peek().0 == Token::End {
            return Ok(Selector::everything());
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                (Token::End, _) => return Ok(Selector::new(requirements)),
                (Token::Comma, _) => {
                    let (token, at) = self.peek();
                    if !matches!(token, Token::Ident(_) | Token::Not) {
                        return Err(self.unexpected(token, at, "a requirement after ','"));
                    }
                }
                (token, at) => return Err(self.unexpected(token, at, "',' or end of string")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement> {
        let (token, start) = self.next();
        let (negated, key, key_at) = match token {
            Token::Not => match self.next() {
                (Token::Ident(key), at) => (true, key, at),
                (token, at) => return Err(self.unexpected(token, at, "a label key after '!'")),
            },
            Token::Ident(key) => (false, key, start),
            token => return Err(self.unexpected(token, start, "'!' or a label key")),
        };
        let build = |this: &Self, op: Operator, values: Vec<&str>| {
            Requirement::new(key, op, values).map_err(|e| this.error(key_at, e.to_string()))
        };
        if negated {
            return build(self, Operator::DoesNotExist, Vec::new());
        }
        let (token, at) = self.peek();
        let operator = match token {
            Token::End | Token::Comma => return build(self, Operator::Exists, Vec::new()),
            Token::Equals | Token::DoubleEquals => Operator::Equals,
            Token::NotEquals => Operator::NotEquals,
            Token::Gt => Operator::Gt,
            Token::Lt => Operator::Lt,
            Token::Ident("in") => Operator::In,
            Token::Ident("notin") => Operator::NotIn,
            token => {
                return Err(self.unexpected(
                    token,
                    at,
                    "'=', '==', '!=', '>', '<', 'in', 'notin', ',' or end of string",
                ))
            }
        };
        self.advance(token);
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => vec![self.exact_value()?],
        };
        build(self, operator, values)
    }

    /// The value after `=`, `!=`, `>` or `<`; empty if none is written.
    fn exact_value(&mut self) -> Result<&'a str> {
        match self.peek() {
            (Token::End | Token::Comma, _) => Ok(""),
            (Token::Ident(value), _) => {
                self.advance(Token::Ident(value));
                Ok(value)
            }
            (token, at) => Err(self.unexpected(token, at, "a value")),
        }
    }

    /// `( v1, v2, ... )`; every omitted value between commas is empty.
    fn value_set(&mut self) -> Result<Vec<&'a str>> {
        match self.next() {
            (Token::Open, _) => {}
            (token, at) => return Err(self.unexpected(token, at, "'('")),
        }
        let mut values = Vec::new();
        let mut pending: Option<&'a str> = None;
        loop {
            match self.next() {
                (Token::Ident(value), at) => {
                    if pending.is_some() {
                        return Err(self.unexpected(Token::Ident(value), at, "',' or ')'"));
                    }
                    pending = Some(value);
                }
                (Token::Comma, _) => values.push(pending.take().unwrap_or("")),
                (Token::Close, _) => {
                    values.push(pending.take().unwrap_or(""));
                    return Ok(values);
                }
                (token, at) => return Err(self.unexpected(token, at, "a value, ',' or ')'")),
            }
        }
    }
}

/// Parses `input` into a [`Selector`].
pub(super) fn parse(input: &str) -> Result<Selector> {
    Parser { input, pos: 0 }.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &str) -> String {
        match parse(input) {
            Ok(s) => s.to_string(),
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    #[test]
    fn accepts_the_kubectl_syntax() {
        assert_eq!(roundtrip(""), "");
        assert_eq!(roundtrip("   "), "");
        assert_eq!(roundtrip("a=b"), "a=b");
        assert_eq!(roundtrip("a==b"), "a=b");
        assert_eq!(roundtrip(" a != b "), "a!=b");
        assert_eq!(roundtrip("a in (y, x ,x)"), "a in (x,y)");
        assert_eq!(roundtrip("a notin(x)"), "a notin (x)");
        assert_eq!(roundtrip("b,!a"), "!a,b");
        assert_eq!(roundtrip("a>1,a<10"), "a>1,a<10");
        assert_eq!(roundtrip("a="), "a=");
        assert_eq!(roundtrip("a in ()"), "a in ()");
        assert_eq!(roundtrip("a in (,x)"), "a in (,x)");
        assert_eq!(roundtrip("a in (x,)"), "a in (,x)");
        assert_eq!(
            roundtrip("in=notin,notin in (in)"),
            "in=notin,notin in (in)"
        );
        assert_eq!(
            roundtrip("example.com/app=web , tier notin (db,cache),!legacy"),
            "example.com/app=web,!legacy,tier notin (cache,db)"
        );
    }

    #[test]
    fn reports_where_and_why() {
        let cases = [
            ("a in", 4, "expected '('"),
            ("a in (b", 7, "expected a value, ',' or ')'"),
            ("a in (b c)", 8, "expected ',' or ')'"),
            ("=a", 0, "expected '!' or a label key"),
            ("a=b=c", 3, "expected ',' or end of string"),
            ("a,", 2, "a requirement after ','"),
            (",a", 0, "expected '!' or a label key"),
            ("!", 1, "a label key after '!'"),
            ("!a=b", 2, "expected ',' or end of string"),
            ("a b", 2, "expected '='"),
            ("a>b", 0, "must be an integer"),
            ("a>", 0, "must be an integer"),
            ("A_/b=c", 0, "invalid label key"),
            ("x,a=-b", 2, "invalid value"),
            ("a=(b)", 2, "expected a value"),
            ("a in (b),", 9, "a requirement after ','"),
        ];
        for (input, position, needle) in cases {
            match parse(input) {
                Err(Error::InvalidSelector {
                    input: got_input,
                    position: got,
                    reason,
                }) => {
                    assert_eq!(got_input, input);
                    assert_eq!(got, position, "{input:?}: {reason}");
                    assert!(reason.contains(needle), "{input:?}: {reason}");
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }
}
