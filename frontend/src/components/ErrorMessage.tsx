/** An API error as a readable message: the detail, the 409 checks, and field errors of a 400. */
import { ApiError } from "../api/client";

export function ErrorMessage({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const apiError = error instanceof ApiError ? error : null;
  const fields = apiError ? Object.entries(apiError.fieldErrors).filter(([f]) => f !== "non_field_errors") : [];
  const general = apiError?.fieldErrors.non_field_errors ?? [];
  let message = apiError ? apiError.message : error instanceof Error ? error.message : String(error);
  // A 400's detail repeats every field message; list them once instead.
  if (fields.length > 0) message = general.length ? general.join(" ") : "Some values were not accepted:";
  return (
    <div className="alert alert-error" role="alert">
      {title && <strong className="alert-title">{title}</strong>}
      <p>{message}</p>
      {apiError && apiError.checks.length > 0 && (
        <ul className="checks" aria-label="Checks">
          {apiError.checks.map((check) => (
            <li key={check.name} className={check.ok ? "check-ok" : "check-failed"}>
              <span aria-hidden="true">{check.ok ? "✓" : "✗"}</span>
              <span className="visually-hidden">{check.ok ? "passed" : "failed"}:</span>{" "}
              <strong>{check.name}</strong>
              {check.detail ? ` — ${check.detail}` : ""}
            </li>
          ))}
        </ul>
      )}
      {fields.length > 0 && (
        <ul className="field-errors">
          {fields.map(([field, messages]) => (
            <li key={field}>
              <code>{field}</code>: {messages.join(" ")}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
