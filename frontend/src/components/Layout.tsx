/** The frame of every signed-in page: top bar with navigation and the user menu. */
import { NavLink, Outlet, useNavigate } from "react-router-dom";
import { useAuth } from "../auth";
import { canManageTenant } from "../lib/permissions";

export function Layout() {
  const { me, logout } = useAuth();
  const navigate = useNavigate();
  const admin = canManageTenant(me);
  const onLogout = async () => {
    await logout().catch(() => undefined);
    navigate("/login", { replace: true });
  };
  return (
    <div className="app">
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="topbar">
        <NavLink to="/clusters" className="brand" aria-label="dbpilot home">
          <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true">
            <ellipse cx="12" cy="5" rx="8" ry="3" fill="none" stroke="currentColor" strokeWidth="2" />
            <path d="M4 5v6c0 1.7 3.6 3 8 3s8-1.3 8-3V5M4 11v6c0 1.7 3.6 3 8 3s8-1.3 8-3v-6" fill="none" stroke="currentColor" strokeWidth="2" />
          </svg>
          dbpilot
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/clusters">Clusters</NavLink>
          <NavLink to="/parameter-groups">Parameter groups</NavLink>
          {admin && <NavLink to="/teams">Teams</NavLink>}
          {admin && <NavLink to="/tokens">API tokens</NavLink>}
          {admin && <NavLink to="/alerts">Alerts</NavLink>}
          {admin && <NavLink to="/audit">Audit log</NavLink>}
          {me?.is_operator && <NavLink to="/hosts">Hosts</NavLink>}
        </nav>
        <div className="user">
          <span className="user-email" title={me?.email ?? undefined}>{me?.email}</span>
          <button type="button" className="btn btn-ghost" onClick={onLogout}>Sign out</button>
        </div>
      </header>
      <main id="main" className="content" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
