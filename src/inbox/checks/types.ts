/** `error` fails `npm run check:emails`; `warning` is worth a look; `info` is for the record. */
export type CheckLevel = 'error' | 'warning' | 'info' | 'ok';

export interface CheckItem {
  id: string;
  level: CheckLevel;
  title: string;
  detail?: string;
}
