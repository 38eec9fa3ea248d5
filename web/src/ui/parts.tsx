import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import type { ApiError } from "../api/client";

export function Page(props: { title: string; actions?: ReactNode; children: ReactNode; lead?: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  // A new page takes the focus to its heading (keyboard and screen reader
  // users start at the top of what changed) and names the tab.
  useEffect(() => {
    heading.current?.focus();
  }, []);
  useEffect(() => {
    document.title = `${props.title} · Tern`;
  }, [props.title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-head">
        <h1 id="page-title" tabIndex={-1} ref={heading}>
          {props.title}
        </h1>
        {props.actions && <div className="page-actions">{props.actions}</div>}
      </header>
      {props.lead && <p className="lead">{props.lead}</p>}
      {props.children}
    </section>
  );
}

export function Section(props: { title: string; actions?: ReactNode; children: ReactNode }) {
  const id = useId();
  return (
    <section className="card" aria-labelledby={id}>
      <header className="card-head">
        <h2 id={id}>{props.title}</h2>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

/** The API's own message for a failed request. */
export function ErrorNote({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error.message}
      {error.code && (
        <span className="code">
          {" "}
          ({error.code}
          {error.field ? `, at ${error.field}` : ""})
        </span>
      )}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** What an empty list means and what to do next. */
export function Empty(props: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{props.title}</p>
      {props.children && <div className="muted">{props.children}</div>}
    </div>
  );
}

export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">never</span>;
  const date = new Date(at);
  return (
    <time dateTime={at} title={date.toISOString()}>
      {date.toLocaleString()}
    </time>
  );
}

/** "3 min", "2 h": how long ago `at` was. */
export function age(at: string, now = Date.now()): string {
  const secs = Math.max(0, Math.round((now - new Date(at).getTime()) / 1000));
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${Math.round(secs / 3600)} h`;
  return `${Math.round(secs / 86400)} days`;
}

const TONES: Record<string, string> = {
  sent: "good",
  delivered: "good",
  verified: "good",
  ok: "good",
  pass: "good",
  active: "good",
  queued: "info",
  held: "info",
  deferred: "warn",
  missing: "warn",
  pending: "warn",
  bounced: "bad",
  failed: "bad",
  suppressed: "bad",
  revoked: "bad",
  wrong: "bad",
  fail: "bad",
  softfail: "warn",
  temperror: "warn",
  permerror: "bad",
  ham: "good",
  spam: "bad",
  flagged: "warn",
};

export function Badge({ value }: { value: string }) {
  return <span className={`badge ${TONES[value] ?? "plain"}`}>{value.replace(/_/g, " ")}</span>;
}

async function copy(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

/** A button copying `text`; `label` says what, for screen readers
 * ("the DKIM record value"), after the visible "Copy". */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  return (
    <button
      type="button"
      className="small"
      onClick={() => {
        copy(text).then(
          () => setState("copied"),
          () => setState("failed"),
        );
        window.setTimeout(() => setState("idle"), 2000);
      }}
    >
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : "Copy"}
      <span className="visually-hidden">{label}</span>
      <span className="visually-hidden" role="status">
        {state === "copied" ? "Copied to the clipboard" : ""}
      </span>
    </button>
  );
}

/** A labelled input; the label is tied to the control by id. */
export function Field(props: {
  label: string;
  hint?: string;
  children: (id: string, describedBy: string | undefined) => ReactNode;
}) {
  const id = useId();
  const hintId = props.hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      {props.children(id, hintId)}
      {props.hint && (
        <small id={hintId} className="muted">
          {props.hint}
        </small>
      )}
    </div>
  );
}

/** A secret shown once, with a warning and a copy button. */
export function SecretOnce(props: { title: string; secret: string; onDone: () => void; children?: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
  }, []);
  return (
    <div className="secret" role="region" aria-label={props.title}>
      <h3 tabIndex={-1} ref={heading}>
        {props.title}
      </h3>
      <p className="warn-text">Copy it now: Tern keeps only a hash of it and will never show it again.</p>
      {props.children}
      <div className="secret-row">
        <code data-testid="secret">{props.secret}</code>
        <CopyButton text={props.secret} label={` ${props.title}`} />
      </div>
      <button type="button" onClick={props.onDone}>
        I have copied it
      </button>
    </div>
  );
}

export function Pager(props: { hasPrev: boolean; hasNext: boolean; onPrev: () => void; onNext: () => void }) {
  if (!props.hasPrev && !props.hasNext) return null;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" disabled={!props.hasPrev} onClick={props.onPrev}>
        Newer
      </button>
      <button type="button" disabled={!props.hasNext} onClick={props.onNext}>
        Older
      </button>
    </nav>
  );
}
