//! The tracking phase: what rewriting a 50 KB HTML message with 30 links
//! (issue 12) costs the accept path. The same message is sent with and
//! without `"track"`, in alternating rounds, to the API process alone.

/// A send request with about 50 KB of HTML and 30 links.
pub fn html_body(tracked: bool) -> String {
    let mut html = String::from("<!doctype html><html><head><title>Receipt</title></head><body>\n");
    let paragraph = "<p>Thank you for your order. The quick brown fox jumps over the lazy dog; \
                     your parcel leaves our warehouse today and arrives within three days.</p>\n";
    let mut link = 0;
    while html.len() < 50 * 1024 {
        html.push_str(paragraph);
        if link < 30 && html.len() > (link + 1) * 1500 {
            html.push_str(&format!(
                "<p><a href=\"https://shop.example.com/orders/1234?item={link}&amp;ref=mail\">Item {link}</a></p>\n"
            ));
            link += 1;
        }
    }
    while link < 30 {
        html.push_str(&format!(
            "<a href=\"https://shop.example.com/more/{link}\">more</a>\n"
        ));
        link += 1;
    }
    html.push_str("</body></html>\n");
    let mut body = serde_json::json!({
        "from": "Bench <bench@example.com>",
        "to": "tracked@bench.test",
        "subject": "Tracking benchmark",
        "html": html,
    });
    if tracked {
        body["track"] = serde_json::json!({"opens": true, "clicks": true});
    }
    body.to_string()
}
