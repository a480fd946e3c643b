/** Not found: also what a cluster of another tenant looks like (the API answers 404, never 403). */
import { Link } from "react-router-dom";

export function NotFoundPage({ what = "page" }: { what?: string }) {
  return (
    <section className="panel not-found">
      <h1>Not found</h1>
      <p>This {what} does not exist, or you do not have access to it.</p>
      <Link to="/clusters">Back to clusters</Link>
    </section>
  );
}
