import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { api, setSession, unwrap, type Schemas } from "./api/client";

type Auth = {
  user: Schemas["User"] | null;
  /** Why the last session ended, when it ended on its own. */
  notice: string | null;
  login: (email: string, password: string) => Promise<void>;
  logout: () => void;
};

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<Schemas["User"] | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const end = useCallback((why: string | null) => {
    setSession(null);
    setUser(null);
    setNotice(why);
  }, []);

  const login = useCallback(
    async (email: string, password: string) => {
      const session = await unwrap(api.POST("/v1/auth/login", { body: { email, password } }));
      setSession(session.token, () => end("Your session ended; log in again."));
      setUser(session.user);
      setNotice(null);
    },
    [end],
  );

  const value = useMemo<Auth>(() => ({ user, notice, login, logout: () => end(null) }), [user, notice, login, end]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth outside AuthProvider");
  return auth;
}
