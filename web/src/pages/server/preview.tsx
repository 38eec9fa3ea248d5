import { useMemo, useState } from "react";

/** What the sandboxed frame may load: nothing but inline styles and data:
 * images, until the reader asks for remote images. The dashboard's own
 * policy still applies on top (no scripts at all). */
function policy(remote: boolean): string {
  const images = remote ? "data: https:" : "data:";
  return `default-src 'none'; img-src ${images}; style-src 'unsafe-inline'; font-src data:`;
}

/** Elements that fetch or navigate outside what a CSP governs (DNS
 * prefetch, preconnect, refresh, base URL) or embed other content. */
const STRIPPED = "script, link, base, meta, object, embed, applet, iframe, frame, frameset, portal";

const REMOTE = /^\s*(https?:)?\/\//i;

/** The sender's HTML as an inert document (DOMParser runs and loads
 * nothing), stripped, with the frame's policy first in its head. */
function prepare(html: string, remote: boolean): { srcDoc: string; blocked: number } {
  const doc = new DOMParser().parseFromString(html, "text/html");
  doc.querySelectorAll(STRIPPED).forEach((el) => el.remove());
  let blocked = 0;
  doc.querySelectorAll("img[src], [background]").forEach((el) => {
    if (REMOTE.test(el.getAttribute("src") ?? el.getAttribute("background") ?? "")) blocked += 1;
  });
  const meta = doc.createElement("meta");
  meta.httpEquiv = "Content-Security-Policy";
  meta.content = policy(remote);
  doc.head.prepend(meta);
  return { srcDoc: "<!doctype html>" + doc.documentElement.outerHTML, blocked };
}

/** A message's HTML in a sandboxed frame: no scripts, no forms, no
 * same-origin access, no referrer; remote images blocked until clicked. */
export function HtmlPreview({ html }: { html: string }) {
  const [remote, setRemote] = useState(false);
  const { srcDoc, blocked } = useMemo(() => prepare(html, remote), [html, remote]);
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
