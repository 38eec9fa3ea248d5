import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../api/client";

export type Loaded<T> = {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
};

function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, "client", e instanceof Error ? e.message : String(e));
}

/** Loads data when `deps` change; `reload()` loads again in place. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  // Data and errors belong to the inputs they were loaded for: when the
  // inputs change, the last answer is not shown as if it were the new one.
  const key = JSON.stringify(deps);
  const [state, setState] = useState<{ key: string; data?: T; error?: ApiError }>({ key });
  const [loading, setLoading] = useState(true);
  const [round, setRound] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    let live = true;
    setLoading(true);
    loadRef
      .current()
      .then((value) => {
        if (live) setState({ key, data: value });
      })
      .catch((e: unknown) => {
        if (live) setState((prev) => ({ key, data: prev.key === key ? prev.data : undefined, error: asApiError(e) }));
      })
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);

  const reload = useCallback(() => setRound((r) => r + 1), []);
  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: loading || !current,
    reload,
  };
}

export type Action<A extends unknown[]> = {
  run: (...args: A) => Promise<boolean>;
  busy: boolean;
  error: ApiError | undefined;
  clear: () => void;
};

/** Runs a change against the API; keeps its error for the form to show. */
export function useAction<A extends unknown[]>(act: (...args: A) => Promise<unknown>): Action<A> {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const actRef = useRef(act);
  actRef.current = act;
  // A second click while the first request runs does nothing.
  const running = useRef(false);
  const run = useCallback(async (...args: A) => {
    if (running.current) return false;
    running.current = true;
    setBusy(true);
    setError(undefined);
    try {
      await actRef.current(...args);
      return true;
    } catch (e) {
      setError(asApiError(e));
      return false;
    } finally {
      running.current = false;
      setBusy(false);
    }
  }, []);
  const clear = useCallback(() => setError(undefined), []);
  return { run, busy, error, clear };
}

/** Calls `tick` every `ms` while the page is visible and `on` holds. */
export function useInterval(tick: () => void, ms: number, on: boolean): void {
  const tickRef = useRef(tick);
  tickRef.current = tick;
  useEffect(() => {
    if (!on) return;
    const id = window.setInterval(() => {
      if (document.visibilityState === "visible") tickRef.current();
    }, ms);
    return () => window.clearInterval(id);
  }, [ms, on]);
}

/** Cursor pagination: the cursors of the pages behind the current one.
 * They belong to `key` (the filters): other filters start on page one. */
export function useCursorPages(key = "") {
  const [state, setState] = useState<{ key: string; cursors: string[] }>({ key, cursors: [] });
  const cursors = state.key === key ? state.cursors : [];
  const setCursors = (next: (c: string[]) => string[]) => setState({ key, cursors: next(cursors) });
  const cursor = cursors[cursors.length - 1];
  const reset = useCallback(() => setState({ key, cursors: [] }), [key]);
  /** Props for {@link Pager}, given the page's `next_cursor`. */
  const pager = (next: string | null | undefined) => ({
    hasPrev: cursors.length > 0,
    hasNext: Boolean(next),
    onPrev: () => setCursors((c) => c.slice(0, -1)),
    onNext: () => {
      if (next) setCursors((c) => [...c, next]);
    },
  });
  return { cursor, reset, pager };
}
