// Calls that wait for an operator's approval: what credgate answers while one is held, and
// what an app reads about it afterwards.

import { ApprovalDenied, ApprovalExpired, ApprovalFailed, CredgateError } from './errors.js';

/** Statuses that no longer change. */
export const FINAL = new Set(['executed', 'failed', 'denied', 'expired']);

/**
 * A call held for an operator's approval (credgate answered `202`). `approvalUrl` opens it in
 * credgate's portal, for a person to decide. Follow it with `App.awaitApproval`.
 */
export class PendingApproval {
  constructor(
    readonly approvalId: string,
    readonly status: string,
    readonly expiresAt: string,
    readonly approvalUrl: string,
    readonly requestId: string | undefined,
  ) {}
}

/** What became of a held call (`App.getApprovalStatus`). */
export class ApprovalInfo {
  constructor(
    readonly approvalId: string,
    /** `pending`, `executing` (approved, being made), `executed`, `failed`, `denied` or `expired`. */
    readonly status: string,
    readonly expiresAt: string,
    readonly approvalUrl: string,
    /** The operator's note. */
    readonly note: string | undefined,
    /** Why an approved call could not be made. */
    readonly failure: string | undefined,
    /** The upstream's status, once made. */
    readonly responseStatus: number | undefined,
  ) {}

  get isFinal(): boolean {
    return FINAL.has(this.status);
  }
}

interface ApprovalBody {
  approval: {
    id: string;
    status: string;
    expires_at: string;
    approval_url: string;
    note?: string;
    failure?: string;
    response?: { status?: number };
  };
}

/** The held call a response announces, or `undefined` for any other response. */
export async function pendingFrom(response: Response): Promise<PendingApproval | undefined> {
  if (response.status !== 202 || !response.headers.has('x-credgate-approval')) return undefined;
  const { approval } = (await response.json()) as ApprovalBody;
  return new PendingApproval(
    approval.id,
    approval.status,
    approval.expires_at,
    approval.approval_url,
    response.headers.get('x-credgate-request-id') ?? undefined,
  );
}

export function infoFrom(body: ApprovalBody): ApprovalInfo {
  const a = body.approval;
  return new ApprovalInfo(a.id, a.status, a.expires_at, a.approval_url, a.note, a.failure, a.response?.status);
}

/** Throws what a settled approval that was not made means. */
export function throwIfUnmade(info: ApprovalInfo): void {
  if (info.status === 'denied') {
    throw new ApprovalDenied(`an operator denied this call${info.note ? `: ${info.note}` : ''}`, { status: 403 });
  }
  if (info.status === 'expired') throw new ApprovalExpired('nobody approved this call in time; it was not made', { status: 410 });
  if (info.status === 'failed') {
    throw new ApprovalFailed(`the approved call could not be made: ${info.failure ?? 'unknown'}`, { status: 502 });
  }
  if (info.status !== 'executed') throw new CredgateError(`unexpected approval status ${JSON.stringify(info.status)}`);
}
