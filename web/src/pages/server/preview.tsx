import { useMemo, useState } from "react";

/** What the sandboxed frame may load: nothing but inline styles and data:
 * images, until the reader asks for remote images. The dashboard's own
 * policy still applies on top (no scripts at all). */
function policy(remote: boolean): string {
  const images = remote ? "data: https:" : "data:";
  return `default-src 'none'; img-src ${images}; style-src 'unsafe-inline'; font-src data:`;
}

function remoteImages(html: string): number {
  const doc = new DOMParser().parseFromString(html, "text/html");
  let count = 0;
  doc.querySelectorAll("img[src], image, [background]").forEach((el) => {
    const src = el.getAttribute("src") ?? el.getAttribute("background") ?? el.getAttribute("href") ?? "";
    if (/^\s*(https?:)?\/\//i.test(src)) count += 1;
  });
  return count;
}

/** A message's HTML in a sandboxed frame: no scripts, no forms, no
 * same-origin access, no referrer; remote images blocked until clicked. */
export function HtmlPreview({ html }: { html: string }) {
  const [remote, setRemote] = useState(false);
  const blocked = useMemo(() => remoteImages(html), [html]);
  const srcDoc = useMemo(
    () => `<meta http-equiv="Content-Security-Policy" content="${policy(remote)}">` + html,
    [html, remote],
  );
  return (
    <div className="preview">
      {blocked > 0 && !remote && (
        <p className="notice">
          {blocked} remote image{blocked === 1 ? " is" : "s are"} blocked, so the sender cannot tell this was viewed.{" "}
          <button type="button" className="small" onClick={() => setRemote(true)}>
            Load remote images
          </button>
        </p>
      )}
      <iframe title="HTML preview of the message" sandbox="" referrerPolicy="no-referrer" srcDoc={srcDoc} />
    </div>
  );
}
