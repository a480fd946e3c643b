/** Teams and their members (tenant admins): create teams, add members, change roles, remove members. */
import { useCallback, useEffect, useState } from "react";
import { resultsOf, tenancy } from "../api/endpoints";
import type { Member, MemberCreated, Role, Team } from "../api/types";
import { useAuth } from "../auth";
import { ErrorMessage } from "../components/ErrorMessage";
import { canManageTenant } from "../lib/permissions";

const ROLES: Role[] = ["viewer", "operator", "admin"];

function memberName(m: Member): string {
  return m.email || `user #${m.id}`;
}

function TeamMembers({ team }: { team: Team }) {
  const [members, setMembers] = useState<Member[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [created, setCreated] = useState<MemberCreated | null>(null);

  const load = useCallback(async () => {
    try {
      setMembers(resultsOf(await tenancy.members(team.id)));
    } catch (exc) {
      setError(exc);
    }
  }, [team.id]);
  useEffect(() => void load(), [load]);

  const run = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      await load();
    } catch (exc) {
      setError(exc);
    }
  };

  return (
    <div className="team-members">
      {members && members.length === 0 && <p className="muted">No members.</p>}
      {members && members.length > 0 && (
        <table className="table">
          <thead>
            <tr><th scope="col">Member</th><th scope="col">Role</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr key={m.id}>
                <td>{memberName(m)}</td>
                <td>
                  <select aria-label={`Role of ${memberName(m)}`} value={m.role} onChange={(e) => run(() => tenancy.setMemberRole(team.id, m.id, e.target.value))}>
                    {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
                  </select>
                </td>
                <td>
                  <button type="button" className="btn btn-small btn-danger-outline" onClick={() => {
                    if (window.confirm(`Remove ${memberName(m)} from ${team.name}? They lose access to the team's clusters.`)) void run(() => tenancy.removeMember(team.id, m.id));
                  }}>Remove</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="inline-form" onSubmit={(e) => { e.preventDefault(); void run(async () => { setCreated(await tenancy.addMember(team.id, email.trim(), role)); setEmail(""); }); }}>
        <label className="visually-hidden" htmlFor={`add-email-${team.id}`}>Email</label>
        <input id={`add-email-${team.id}`} type="email" placeholder="person@example.com" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <label className="visually-hidden" htmlFor={`add-role-${team.id}`}>Role</label>
        <select id={`add-role-${team.id}`} value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
        <button type="submit" className="btn">Invite member</button>
      </form>
      {created && (
        <div className="alert alert-success" role="status">
          <strong>{created.email}</strong> is invited as {created.role}: they become a member when they accept the
          invitation sent to that address.{" "}
          <button type="button" className="btn btn-small" onClick={() => setCreated(null)}>Done</button>
        </div>
      )}
      <ErrorMessage error={error} />
    </div>
  );
}

export function TeamsPage() {
  const { me } = useAuth();
  const [teams, setTeams] = useState<Team[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState("");

  const load = useCallback(async () => {
    try {
      setTeams(resultsOf(await tenancy.teams()));
    } catch (exc) {
      setError(exc);
    }
  }, []);
  useEffect(() => void load(), [load]);

  if (!canManageTenant(me)) return <section className="panel"><h1>Teams</h1><p>Only tenant admins manage teams.</p></section>;

  return (
    <div>
      <div className="page-header"><h1>Teams</h1></div>
      <p className="muted">Clusters are granted to teams; a member's role (viewer, operator, admin) says what they may do on those clusters.</p>
      <ErrorMessage error={error} />
      {teams?.map((team) => (
        <section className="panel" key={team.id}>
          <h2>{team.name} <span className="muted small">({team.tenant_name}{team.your_role ? `, you: ${team.your_role}` : ""})</span></h2>
          <TeamMembers team={team} />
        </section>
      ))}
      <section className="panel">
        <h2>New team</h2>
        <form className="inline-form" onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            await tenancy.createTeam(name.trim());
            setName("");
            await load();
          } catch (exc) {
            setError(exc);
          }
        }}>
          <label htmlFor="team-name">Name</label>
          <input id="team-name" required value={name} onChange={(e) => setName(e.target.value)} />
          <button type="submit" className="btn btn-primary">Create team</button>
        </form>
      </section>
    </div>
  );
}
