import type { WorkerLiveness } from '../../mail/heartbeat.ts';
import { formatAge, type OutboxEntry, type OutboxOverview } from '../../mail/outbox-admin.ts';
import { Csrf, Layout, type PageContext } from './layout.tsx';

export interface AdminOutboxProps {
  ctx: PageContext;
  overview: OutboxOverview;
  workers: WorkerLiveness | null;
  dead: OutboxEntry[];
  /** How many dead letters exist in all (the list shows the newest only). */
  deadTotal: number;
  now: number;
}

export function AdminOutboxPage(props: AdminOutboxProps) {
  const { ctx, overview, dead } = props;
  return (
    <Layout ctx={ctx} title="Outbox">
      <section class="inbox" aria-labelledby="outbox-title">
        <h1 id="outbox-title">Outbox</h1>
        <p class="lead">
          Every email and webhook the app has queued. Recipients are shown redacted; message
          contents are never shown here.
        </p>
        <dl class="details" aria-label="Queue">
          <dt>Pending</dt>
          <dd>
            {overview.counts.pending}
            {overview.oldestPendingSeconds !== null
              ? ` (oldest waiting ${formatAge(overview.oldestPendingSeconds)})`
              : ''}
          </dd>
          <dt>Sent</dt>
          <dd>{overview.counts.sent}</dd>
          <dt>Dead letters</dt>
          <dd>{overview.counts.dead}</dd>
          <dt>Workers</dt>
          <dd>
            <WorkerStatus workers={props.workers} />
          </dd>
        </dl>

        <h2 id="dead-title">Dead letters</h2>
        {dead.length === 0 ? (
          <div class="empty">
            <p>
              <strong>No dead letters.</strong> Every message was sent or is still being tried.
            </p>
          </div>
        ) : (
          <>
            <p>
              Messages the mail server refused for good, or that failed every attempt. Retrying puts
              one back in the queue with a fresh set of attempts.
              {props.deadTotal > dead.length
                ? ` Showing the newest ${dead.length} of ${props.deadTotal}.`
                : ''}
            </p>
            <table class="headers" aria-labelledby="dead-title">
              <thead>
                <tr>
                  <th scope="col">Queued</th>
                  <th scope="col">Template</th>
                  <th scope="col">To</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last error</th>
                  <th scope="col">
                    <span class="visually-hidden">Action</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {dead.map((entry) => (
                  <tr key={entry.id}>
                    <td class="nowrap">
                      <time dateTime={new Date(entry.createdAt).toISOString()}>
                        {formatAge((props.now - entry.createdAt) / 1000)} ago
                      </time>
                    </td>
                    <td>
                      <code>{entry.template}</code> ({entry.flow})
                    </td>
                    <td class="nowrap">{entry.recipient}</td>
                    <td>{entry.attempts}</td>
                    <td>{entry.lastError ?? ''}</td>
                    <td class="nowrap">
                      <form method="post" action="/admin/outbox/retry" class="inline">
                        <Csrf token={ctx.csrfToken} />
                        <input type="hidden" name="id" value={entry.id} />
                        <button type="submit" class="button secondary">
                          Retry<span class="visually-hidden"> message {entry.id}</span>
                        </button>
                      </form>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <form method="post" action="/admin/outbox/retry" class="actions">
              <Csrf token={ctx.csrfToken} />
              <input type="hidden" name="all" value="dead" />
              <button type="submit" class="button">
                Retry all dead
              </button>
            </form>
          </>
        )}

        <h2 id="purge-title">Purge</h2>
        <form method="post" action="/admin/outbox/purge" aria-labelledby="purge-title">
          <Csrf token={ctx.csrfToken} />
          <p>Pending messages are never purged.</p>
          <div class="field">
            <label for="field-sent_older_than_days">Delete sent messages older than (days)</label>
            <input
              id="field-sent_older_than_days"
              name="sent_older_than_days"
              type="number"
              inputMode="numeric"
              min={0}
              max={3650}
              value="7"
            />
          </div>
          <div class="field">
            <label>
              <input type="checkbox" name="dead" value="on" /> Also delete every dead letter
            </label>
          </div>
          <div class="actions">
            <button type="submit" class="button danger">
              Purge
            </button>
          </div>
        </form>
      </section>
    </Layout>
  );
}

function WorkerStatus(props: { workers: WorkerLiveness | null }) {
  const { workers } = props;
  if (!workers) return <span>unknown (run mailproof migrate)</span>;
  if (workers.live > 0) {
    return (
      <span class="badge ok">
        {workers.live} running, last heartbeat {workers.lastBeatSecondsAgo ?? 0}s ago
      </span>
    );
  }
  return (
    <span class="badge warn">
      none running
      {workers.lastBeatSecondsAgo !== null
        ? `; last heartbeat ${formatAge(workers.lastBeatSecondsAgo)} ago`
        : ''}
    </span>
  );
}
