import { Link } from "react-router";
import type { Schemas } from "../../api/client";
import { Badge, Section, Time } from "../../ui/parts";
import { AttemptTable } from "./attempts";

/** What Tern's SMTP server recorded of a received message: the
 * connection, the sender checks, the route and the endpoint's answers. */
export function InboundSection({ inbound, serverId }: { inbound: Schemas["InboundDetail"]; serverId: string }) {
  const { envelope, checks } = inbound;
  return (
    <>
      <Section title="Received">
        <dl className="facts">
          <dt>Kind</dt>
          <dd>
            {inbound.kind} · {inbound.action.replace(/_/g, " ")}
            {inbound.flagged && <Badge value="flagged" />}
          </dd>
          <dt>Envelope</dt>
          <dd>
            from <code>{envelope.mail_from || "<>"}</code> to{" "}
            {envelope.rcpt_to.map((r) => (
              <code key={r}>{r} </code>
            ))}
          </dd>
          <dt>Client</dt>
          <dd>
            {envelope.client_ip} (HELO <code>{envelope.helo}</code>){envelope.tls ? ", TLS" : ", no TLS"}
          </dd>
          {inbound.about_message_id && (
            <>
              <dt>About</dt>
              <dd>
                <Link to={`/servers/${serverId}/messages/${inbound.about_message_id}`}>
                  the message this report is about
                </Link>
              </dd>
            </>
          )}
        </dl>
      </Section>
      {checks && (
        <Section title="Sender checks">
          <table>
            <thead>
              <tr>
                <th scope="col">Check</th>
                <th scope="col">Result</th>
                <th scope="col">For</th>
              </tr>
            </thead>
            <tbody>
              <CheckRow name="SPF (MAIL FROM)" result={checks.spf.result} about={checks.spf.domain} />
              <CheckRow name="SPF (HELO)" result={checks.spf_helo.result} about={checks.spf_helo.domain} />
              {checks.dkim.length === 0 && <CheckRow name="DKIM" result="none" about="no signature" />}
              {checks.dkim.map((d, i) => (
                <CheckRow key={i} name="DKIM" result={d.result} about={`${d.domain ?? "?"} (${d.selector ?? "?"})`} />
              ))}
              <CheckRow
                name="DMARC"
                result={checks.dmarc.result}
                about={`${checks.dmarc.domain}${checks.dmarc.policy ? `, p=${checks.dmarc.policy}` : ""}`}
              />
              <CheckRow name="ARC" result={checks.arc} about="" />
              <CheckRow name="Reverse DNS" result={checks.fcrdns} about={checks.client_name ?? ""} />
              <CheckRow
                name="Spam"
                result={checks.spam}
                about={checks.spam_score != null ? `score ${checks.spam_score}` : ""}
              />
            </tbody>
          </table>
        </Section>
      )}
      {inbound.endpoint_attempts.length > 0 && (
        <Section title="Deliveries to the route's endpoint">
          <AttemptTable attempts={inbound.endpoint_attempts} showEvent={false} />
        </Section>
      )}
    </>
  );
}

function CheckRow(props: { name: string; result: string; about: string }) {
  return (
    <tr>
      <th scope="row">{props.name}</th>
      <td>
        <Badge value={props.result} />
      </td>
      <td className="wrap">{props.about}</td>
    </tr>
  );
}

/** Opens and clicks of a sent message (machine-flagged hits counted apart). */
export function TrackingSection({ tracking }: { tracking: Schemas["MessageTracking"] }) {
  return (
    <Section title="Opens and clicks">
      <dl className="facts">
        <dt>Opens</dt>
        <dd>
          {tracking.opens} ({tracking.opens_machine} automatic)
          {tracking.first_open_at && (
            <>
              {" "}
              · first <Time at={tracking.first_open_at} />
            </>
          )}
        </dd>
        <dt>Clicks</dt>
        <dd>
          {tracking.clicks} ({tracking.clicks_machine} automatic)
        </dd>
      </dl>
      {tracking.links.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Link</th>
              <th scope="col">Clicks</th>
              <th scope="col">Last click</th>
            </tr>
          </thead>
          <tbody>
            {tracking.links.map((l) => (
              <tr key={l.link}>
                <td className="wrap">
                  <code>{l.url}</code>
                </td>
                <td>
                  {l.clicks} ({l.clicks_machine} automatic)
                </td>
                <td>
                  <Time at={l.last_click_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
