// Signed webhooks, delivered from the outbox (so a failing endpoint is retried like mail).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SendError } from '../mail/transport.ts';

export const SIGNATURE_HEADER = 'Mailproof-Signature';
const TIMEOUT_MS = 10_000;

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp lets receivers refuse replays. */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a receiver runs: true when the signature matches and is at most `toleranceSeconds` old. */
export function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = Object.fromEntries(
    header.split(',').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()];
    }),
  );
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || !parts.v1)
    return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split('v1=')[1] ?? '', 'hex');
  const actual = Buffer.from(parts.v1, 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export interface WebhookDelivery {
  url: string;
  deliveryId: string;
  event: string;
  body: string;
  secret: string;
  nowMs: number;
}

export async function deliverWebhook(delivery: WebhookDelivery): Promise<void> {
  let response: Response;
  try {
    response = await fetch(delivery.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'Mailproof-Webhook/1',
        'Mailproof-Event': delivery.event,
        'Mailproof-Delivery': delivery.deliveryId,
        [SIGNATURE_HEADER]: signWebhook(
          delivery.secret,
          delivery.body,
          Math.floor(delivery.nowMs / 1000),
        ),
      },
      body: delivery.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.arrayBuffer().catch(() => undefined);
  } catch (error) {
    throw new SendError(`webhook: ${(error as Error).name}: ${(error as Error).message}`, false);
  }
  if (response.status >= 200 && response.status < 300) return;
  // 410 Gone says the endpoint will never want it; anything else may recover.
  throw new SendError(`webhook: HTTP ${response.status}`, response.status === 410);
}
