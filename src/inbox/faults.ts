// Fault injection ("chaos"): the catcher answers chosen messages with an SMTP error or drops the
// connection, so an app's retry paths (Mailproof's outbox included) can be seen working.
import { SendError } from '../mail/transport.ts';

export type FaultAction = 421 | 451 | 550 | 'drop';

export interface Fault {
  id: number;
  action: FaultAction;
  /** How many more messages it applies to. */
  remaining: number;
  /** Only messages to a recipient containing this text (case-insensitive); all when null. */
  to: string | null;
}

export interface FaultInjector {
  add(fault: { action: FaultAction; count: number; to?: string | null }): Fault;
  list(): Fault[];
  clear(): void;
  /** Takes the first fault matching these recipients, counting it down; null when none applies. */
  take(recipients: string[]): Fault | null;
}

export function createFaultInjector(): FaultInjector {
  let faults: Fault[] = [];
  let nextId = 1;
  return {
    add({ action, count, to = null }) {
      const fault = { id: nextId++, action, remaining: count, to: to ? to.toLowerCase() : null };
      faults.push(fault);
      return { ...fault };
    },
    list: () => faults.map((f) => ({ ...f })),
    clear() {
      faults = [];
    },
    take(recipients) {
      const lower = recipients.map((r) => r.toLowerCase());
      const fault = faults.find((f) => f.to === null || lower.some((r) => r.includes(f.to ?? '')));
      if (!fault) return null;
      fault.remaining -= 1;
      if (fault.remaining <= 0) faults = faults.filter((f) => f !== fault);
      return { ...fault };
    },
  };
}

export function faultMessage(action: FaultAction): string {
  switch (action) {
    case 421:
      return '421 4.3.2 Service not available (injected by the Mailproof inbox)';
    case 451:
      return '451 4.3.0 Temporary failure (injected by the Mailproof inbox)';
    case 550:
      return '550 5.7.1 Message refused (injected by the Mailproof inbox)';
    case 'drop':
      return 'connection dropped (injected by the Mailproof inbox)';
  }
}

/** The same fault as the in-process transport's send error: 5xx is permanent, the rest retry. */
export function faultAsSendError(action: FaultAction): SendError {
  const permanent = action === 550;
  return new SendError(
    action === 'drop'
      ? `ECONNRESET: ${faultMessage(action)}`
      : `SMTP ${action}: ${faultMessage(action)}`,
    permanent,
  );
}
