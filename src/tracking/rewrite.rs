//! The HTML part of a tracked message, rewritten before it is signed:
//! each `http(s)` link goes through `https://<tracking host>/c/<token>`,
//! and a 1×1 pixel `https://<tracking host>/o/<token>` is added before
//! `</body>` (or at the end). lol_html streams the document and leaves
//! every other byte as it was.
//!
//! Left alone: `mailto:`, `tel:` and every other scheme, links marked
//! `data-tern-track="off"`, links under `skip` (the unsubscribe URL), and
//! links after the first `MAX_LINKS`.

use std::cell::RefCell;
use std::rc::Rc;

use lol_html::html_content::{ContentType, EndTag};
use lol_html::{EndTagHandler, RewriteStrSettings, element, rewrite_str};
use uuid::Uuid;

use super::token::{Tokens, Tracked};

/// Links one message may have tracked.
pub const MAX_LINKS: usize = 1000;

/// What to rewrite, and how.
pub struct Plan<'a> {
    /// `https://<tracking host>`, without a trailing slash.
    pub base: &'a str,
    pub opens: bool,
    pub clicks: bool,
    /// URL prefixes never rewritten.
    pub skip: &'a [String],
    pub tokens: &'a Tokens,
    pub recipient: Uuid,
}

/// The rewritten document and the original URLs, by link index.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub html: String,
    pub links: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the HTML could not be rewritten: {0}")]
pub struct RewriteError(String);

/// Rewrites `html` for one recipient.
pub fn rewrite(html: &str, plan: &Plan<'_>) -> Result<Rewritten, RewriteError> {
    let links = RefCell::new(Vec::new());
    let pixel = plan.opens.then(|| {
        format!(
            "<img src=\"{}/o/{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">",
            plan.base,
            plan.tokens.token(Tracked::Open {
                recipient: plan.recipient
            })
        )
    });
    let placed = Rc::new(RefCell::new(false));
    let mut handlers = Vec::new();
    if plan.clicks {
        handlers.push(element!("a[href]", |el| {
            if el
                .get_attribute("data-tern-track")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"))
            {
                return Ok(());
            }
            let Some(href) = el.get_attribute("href") else {
                return Ok(());
            };
            let url = decode_entities(href.trim());
            let lower = url.to_ascii_lowercase();
            let web = lower.starts_with("http://") || lower.starts_with("https://");
            if !web || plan.skip.iter().any(|s| url.starts_with(s.as_str())) {
                return Ok(());
            }
            let mut links = links.borrow_mut();
            let Ok(index) = u16::try_from(links.len()) else {
                return Ok(());
            };
            if links.len() >= MAX_LINKS {
                return Ok(());
            }
            let token = plan.tokens.token(Tracked::Click {
                recipient: plan.recipient,
                link: index,
            });
            el.set_attribute("href", &format!("{}/c/{token}", plan.base))?;
            links.push(url);
            Ok(())
        }));
    }
    if let Some(pixel) = &pixel {
        let (pixel, placed) = (pixel.clone(), placed.clone());
        handlers.push(element!("body", move |el| {
            let (pixel, placed) = (pixel.clone(), placed.clone());
            // A body without an end tag has no handler call: the pixel
            // then goes at the end of the document.
            let before_end: EndTagHandler<'static> = Box::new(move |end: &mut EndTag<'_>| {
                if !*placed.borrow() {
                    end.before(&pixel, ContentType::Html);
                    *placed.borrow_mut() = true;
                }
                Ok(())
            });
            el.on_end_tag(before_end)?;
            Ok(())
        }));
    }
    let settings = handlers
        .into_iter()
        .fold(RewriteStrSettings::new(), |settings, handler| {
            settings.append_element_content_handler(handler)
        });
    let mut html = rewrite_str(html, settings).map_err(|e| RewriteError(e.to_string()))?;
    if let Some(pixel) = pixel
        && !*placed.borrow()
    {
        html.push_str(&pixel);
    }
    Ok(Rewritten {
        html,
        links: links.into_inner(),
    })
}

/// An attribute value with its character references decoded (the named
/// ones URLs use, and numeric ones); anything else is kept as written.
pub fn decode_entities(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[1..].find(';').map(|i| i + 1).filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "sol" => Some('/'),
            "equals" => Some('='),
            "quest" => Some('?'),
            "num" => Some('#'),
            "percnt" => Some('%'),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32)
                .filter(|c| !c.is_control()),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_links_are_rewritten_and_the_rest_is_untouched() {
        let tokens = Tokens::new(b"key");
        let recipient = Uuid::now_v7();
        let skip = vec!["https://tern.test/u/".to_string()];
        let plan = Plan {
            base: "https://track.example.com",
            opens: true,
            clicks: true,
            skip: &skip,
            tokens: &tokens,
            recipient,
        };
        let html = "<!doctype html><html><body><p>Hi <b>there</b></p>\n\
            <a href=\"https://shop.example.com/a\">one</a>\n\
            <a class=x href='http://shop.example.com/b?x=1&amp;y=2'>two</a>\n\
            <a href=\"mailto:help@example.com\">mail</a> <a href=\"tel:+15550100\">call</a>\n\
            <a data-tern-track=\"off\" href=\"https://shop.example.com/private\">off</a>\n\
            <a href=\"https://tern.test/u/abc\">unsubscribe</a>\n\
            </body></html>";
        let out = rewrite(html, &plan).unwrap();
        assert_eq!(
            out.links,
            vec![
                "https://shop.example.com/a".to_string(),
                "http://shop.example.com/b?x=1&y=2".to_string()
            ]
        );
        let click = |link| {
            format!(
                "https://track.example.com/c/{}",
                tokens.token(Tracked::Click { recipient, link })
            )
        };
        let pixel = format!(
            "<img src=\"https://track.example.com/o/{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">",
            tokens.token(Tracked::Open { recipient })
        );
        let expected = html
            .replace("\"https://shop.example.com/a\"", &format!("\"{}\"", click(0)))
            // A rewritten attribute is written with double quotes.
            .replace(
                "'http://shop.example.com/b?x=1&amp;y=2'",
                &format!("\"{}\"", click(1)),
            )
            .replace("</body>", &format!("{pixel}</body>"));
        assert_eq!(out.html, expected);
    }

    #[test]
    fn a_fragment_gets_the_pixel_at_its_end_and_nothing_else_changes() {
        let tokens = Tokens::new(b"key");
        let plan = Plan {
            base: "https://t.example",
            opens: true,
            clicks: false,
            skip: &[],
            tokens: &tokens,
            recipient: Uuid::nil(),
        };
        let out = rewrite("<p><a href=\"https://a.example\">a</a></p>", &plan).unwrap();
        assert!(
            out.html
                .starts_with("<p><a href=\"https://a.example\">a</a></p><img src=\"https://t.example/o/")
        );
        assert!(out.links.is_empty());
    }

    #[test]
    fn entities_decode_and_junk_stays() {
        assert_eq!(decode_entities("a&amp;b&#38;c&#x26;d"), "a&b&c&d");
        assert_eq!(decode_entities("a&b=1&c"), "a&b=1&c");
        assert_eq!(decode_entities("&unknown;&#0;"), "&unknown;&#0;");
    }
}
