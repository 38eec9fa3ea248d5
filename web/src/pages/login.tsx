import { useState, type FormEvent } from "react";
import { useAuth } from "../auth";
import { useAction } from "../ui/hooks";
import { ErrorNote, Field } from "../ui/parts";

export function LoginPage() {
  const { login, notice } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const action = useAction(login);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void action.run(email, password);
  };

  return (
    <main id="main" className="login">
      <form onSubmit={submit} className="card" aria-labelledby="page-title">
        <h1 id="page-title">Log in to Tern</h1>
        {notice && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        <Field label="Email">
          {(id) => (
            <input
              id={id}
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
          )}
        </Field>
        <Field label="Password">
          {(id) => (
            <input
              id={id}
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
        <ErrorNote error={action.error} />
        <button type="submit" className="primary" disabled={action.busy}>
          {action.busy ? "Logging in…" : "Log in"}
        </button>
        <p className="muted small-text">
          Users are created with <code>tern admin create-user</code>; <code>scripts/run</code> prints a demo login.
        </p>
      </form>
    </main>
  );
}
