//! Open and click tracking: the HTML rewrite done before signing
//! (`rewrite`, with lol_html), the signed tokens of the pixel and link URLs
//! (`token`), and what makes an open or click look automatic (`machine`).
//! Pure: recording and redirecting are the API's (`api::tracking`) and the
//! database's (`db::tracking`).

pub mod machine;
pub mod rewrite;
pub mod token;
