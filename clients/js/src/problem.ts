import type { components } from "./generated/api.js";

/** The RFC 9457 problem document the realm answers every error with. */
export type Problem = components["schemas"]["Problem"] & Record<string, unknown>;

/** The stable prefix of every problem type the realm uses (docs/errors.md). */
export const problemBase = "https://zerorealm.dev/problems/";

/**
 * A request the realm refused or could not answer, carrying its RFC 9457
 * problem. Branch on {@link ProblemError.type} (or {@link ProblemError.is}),
 * never on the message text: the type is the one stable field.
 */
export class ProblemError extends Error {
  /** The problem type URI, e.g. `https://zerorealm.dev/problems/session-ended`. */
  readonly type: string;
  /** The HTTP status code. */
  readonly status: number;
  /** What went wrong and what to do about it, for people. */
  readonly detail: string;
  /**
   * Seconds to wait before trying again, from the `Retry-After` header of a
   * 429 or 503; undefined when the realm sent none.
   */
  readonly retryAfter: number | undefined;
  /** The X-Request-Id to quote when reporting the problem. */
  readonly requestId: string | undefined;
  /** The whole problem document, with any extension members. */
  readonly problem: Problem;

  constructor(problem: Problem, retryAfter?: number) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.name = "ProblemError";
    this.type = problem.type;
    this.status = problem.status;
    this.detail = problem.detail ?? "";
    this.retryAfter = retryAfter;
    this.requestId = problem.request_id;
    this.problem = problem;
  }

  /** Whether the problem's type is `https://zerorealm.dev/problems/<name>`. */
  is(name: string): boolean {
    return this.type === problemBase + name;
  }
}

/**
 * retryAfterSeconds reads a Retry-After header: delay-seconds or an
 * HTTP-date (RFC 9110 §10.2.3). Anything else is ignored, not guessed.
 */
export function retryAfterSeconds(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  // IMF-fixdate, the form HTTP dates take ("Sun, 06 Nov 1994 08:49:37 GMT");
  // Date.parse alone would read "-3" as a year.
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * problemFromResponse turns a failed response into a ProblemError. A body
 * that is not a problem document (a proxy's HTML page, say) still gives
 * one, typed `about:blank` as RFC 9457 says, so callers handle one kind of
 * error.
 */
export async function problemFromResponse(res: Response): Promise<ProblemError> {
  const retryAfter = retryAfterSeconds(res.headers.get("Retry-After"));
  const text = await res.text().catch(() => "");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (isProblem(parsed)) return new ProblemError(parsed, retryAfter);
  const requestId = res.headers.get("X-Request-Id") ?? undefined;
  return new ProblemError(
    {
      type: "about:blank",
      title: res.statusText || `HTTP ${res.status}`,
      status: res.status,
      detail: text.slice(0, 200),
      ...(requestId ? { request_id: requestId } : {}),
    },
    retryAfter,
  );
}

function isProblem(v: unknown): v is Problem {
  if (typeof v !== "object" || v === null) return false;
  const p = v as Record<string, unknown>;
  return typeof p.type === "string" && typeof p.title === "string" && typeof p.status === "number";
}
