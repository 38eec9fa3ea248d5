import { Link } from "react-router";
import { Page } from "../ui/parts";

export function NotFoundPage() {
  return (
    <Page title="Not found">
      <p>
        There is nothing here. Go back to <Link to="/">your organizations</Link>.
      </p>
    </Page>
  );
}
