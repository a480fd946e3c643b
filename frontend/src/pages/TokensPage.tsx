/** Team API tokens (tenant admins): create (the secret is shown once, with a copy button), list, revoke. */
import { useCallback, useEffect, useState } from "react";
import { resultsOf, tenancy } from "../api/endpoints";
import type { ApiToken, CreatedToken, Team } from "../api/types";
import { useAuth } from "../auth";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorMessage } from "../components/ErrorMessage";
import { formatRelative, formatTime } from "../lib/format";
import { canManageTenant } from "../lib/permissions";

function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
    } catch {
      // Clipboard refused (e.g. plain http on a remote host): select the text so Ctrl+C works.
      const el = document.getElementById("new-token-value");
      if (el) window.getSelection()?.selectAllChildren(el);
    }
  };
  return <button type="button" className="btn btn-small" onClick={copy}>{copied ? "Copied" : "Copy"}</button>;
}

export function TokensPage() {
  const { me } = useAuth();
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [teams, setTeams] = useState<Team[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [revoking, setRevoking] = useState<ApiToken | null>(null);
  const [form, setForm] = useState({ team: "", name: "", scope: "read", expires_at: "" });

  const load = useCallback(async () => {
    try {
      const [t, tm] = await Promise.all([tenancy.tokens(), tenancy.teams()]);
      setTokens(resultsOf(t));
      const teamList = resultsOf(tm);
      setTeams(teamList);
      setForm((f) => (f.team || teamList.length === 0 ? f : { ...f, team: String(teamList[0].id) }));
    } catch (exc) {
      setError(exc);
    }
  }, []);
  useEffect(() => void load(), [load]);

  if (!canManageTenant(me)) return <section className="panel"><h1>API tokens</h1><p>Only tenant admins manage tokens.</p></section>;
  const teamName = (id: unknown) => teams.find((t) => String(t.id) === String(id))?.name ?? String(id ?? "");

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const token = await tenancy.createToken({
        team: Number(form.team),
        name: form.name.trim(),
        scope: form.scope,
        expires_at: form.expires_at ? new Date(form.expires_at).toISOString() : null,
      });
      setCreated(token);
      setForm({ ...form, name: "", expires_at: "" });
      await load();
    } catch (exc) {
      setError(exc);
    }
  };

  return (
    <div>
      <div className="page-header"><h1>API tokens</h1></div>
      <p className="muted">Scripts and the CLI authenticate with a team token (<code>Authorization: Bearer dbp_…</code>). A token acts as its team, bounded by its scope.</p>
      {created && (
        <div className="alert alert-success token-once" role="status">
          <strong>Token "{created.name || created.prefix}" created.</strong> Copy it now: it will not be shown again.
          <div className="token-value">
            <code id="new-token-value">{created.token}</code>
            <CopyButton text={created.token} />
          </div>
          <button type="button" className="btn btn-small" onClick={() => setCreated(null)}>I have saved it</button>
        </div>
      )}
      <ErrorMessage error={error} />
      <section className="panel">
        <h2>New token</h2>
        <form className="token-form" onSubmit={create}>
          <div className="field">
            <label htmlFor="token-team">Team</label>
            <select id="token-team" required value={form.team} onChange={(e) => setForm({ ...form, team: e.target.value })}>
              {teams.map((t) => <option key={t.id} value={t.id}>{t.name}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor="token-name">Name</label>
            <input id="token-name" required placeholder="ci-deploy" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="token-scope">Scope</label>
            <select id="token-scope" value={form.scope} onChange={(e) => setForm({ ...form, scope: e.target.value })}>
              <option value="read">read — view only</option>
              <option value="operate">operate — also switchover, failover, maintenance</option>
              <option value="admin">admin — also settings, routes, delete</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="token-expires">Expires (optional)</label>
            <input id="token-expires" type="datetime-local" value={form.expires_at} onChange={(e) => setForm({ ...form, expires_at: e.target.value })} />
          </div>
          <button type="submit" className="btn btn-primary">Create token</button>
        </form>
      </section>
      <section className="panel">
        <h2>Tokens</h2>
        {tokens && tokens.length === 0 && <p className="muted">No tokens.</p>}
        {tokens && tokens.length > 0 && (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Team</th><th scope="col">Scope</th>
                <th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">Status</th>
                <th scope="col"><span className="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.id}>
                  <td>{t.name || "—"}</td>
                  <td className="mono">{t.prefix ? `${t.prefix}…` : "—"}</td>
                  <td>{teamName(t.team)}</td>
                  <td>{t.scope}</td>
                  <td>{t.expires_at ? formatTime(t.expires_at) : "never"}</td>
                  <td>{formatRelative(t.last_used_at)}</td>
                  <td>{t.revoked_at ? <span className="badge state-failed">revoked</span> : t.active ? <span className="badge state-ok">active</span> : <span className="badge state-unknown">expired</span>}</td>
                  <td>{!t.revoked_at && <button type="button" className="btn btn-small btn-danger-outline" onClick={() => setRevoking(t)}>Revoke…</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {revoking && (
        <ConfirmDialog
          title={`Revoke token ${revoking.name || revoking.prefix}`}
          confirmLabel="Revoke token"
          danger
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await tenancy.revokeToken(revoking.id);
            await load();
          }}
        >
          <p>Scripts using this token get 401 from their next request. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
