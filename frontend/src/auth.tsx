/** The signed-in user (GET /api/v1/auth/me/), login and logout, shared through React context. */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiError, setUnauthorizedListener } from "./api/client";
import { auth } from "./api/endpoints";
import type { Me } from "./api/types";

interface AuthState {
  me: Me | null;
  loading: boolean;
  /** Set when /auth/me failed for another reason than "not signed in" (e.g. server down). */
  error: ApiError | null;
  login(email: string, password: string): Promise<void>;
  logout(): Promise<void>;
  reload(): Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | null>(null);

  const reload = useCallback(async () => {
    try {
      setMe(await auth.me());
      setError(null);
    } catch (exc) {
      setMe(null);
      const e = exc as ApiError;
      setError(e.status === 401 || e.status === 403 ? null : e);
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    setUnauthorizedListener(() => setMe(null));
    // The page says whether the request that loaded it had a session: skip a call bound to answer 401.
    if (document.getElementById("root")?.dataset.authenticated === "0") setLoading(false);
    else void reload();
    return () => setUnauthorizedListener(null);
  }, [reload]);

  const login = useCallback(async (email: string, password: string) => {
    await auth.csrf();
    await auth.login(email, password);
    // Django rotates the CSRF token at login; the new cookie is read on the next request.
    setMe(await auth.me());
    setError(null);
  }, []);

  const logout = useCallback(async () => {
    try {
      await auth.logout();
    } finally {
      setMe(null);
    }
  }, []);

  const value = useMemo(() => ({ me, loading, error, login, logout, reload }), [me, loading, error, login, logout, reload]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}
