// The one error class of the client. A server error keeps the HTTP status and the
// server's own message (rheo answers errors as
// {"http status code":..,"http status description":..,"message":..}); a request that
// never got an answer has status 0.

export class RheoError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, statusText?: string, body?: unknown, headers?: Headers | null,
   *          method?: string, url?: string, cause?: unknown}} [details]
   */
  constructor(message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "RheoError";
    /** HTTP status of the answer; 0 when the server could not be reached. */
    this.status = details.status ?? 0;
    this.statusText = details.statusText ?? "";
    /** The error body as parsed JSON (or text), when there was one. */
    this.body = details.body ?? null;
    this.method = details.method ?? "";
    this.url = details.url ?? "";
    const headers = details.headers ?? null;
    /** The current ETag the server sent with the error (a 412 carries it), or null. */
    this.etag = headers ? headers.get("ETag") : null;
    const retry = headers ? headers.get("Retry-After") : null;
    /** Seconds the server asked to wait (429, 503), or null. */
    this.retryAfter = retry !== null && /^\d+$/.test(retry.trim()) ? Number(retry) : null;
  }

  /** Builds the error of a response that is not ok, reading its body. */
  static async fromResponse(res, method = "", url = "") {
    let body = null;
    let text = "";
    try {
      text = await res.text();
      body = text === "" ? null : JSON.parse(text);
    } catch {
      body = text || null;
    }
    const serverMessage = body && typeof body === "object" && typeof body.message === "string" ? body.message : null;
    const message = serverMessage ?? (`${res.status} ${res.statusText || ""}`.trim());
    return new RheoError(message, {
      status: res.status, statusText: res.statusText, body, headers: res.headers, method, url,
    });
  }
}

/** True for the error of an aborted call (fetch rejects with the signal's reason). */
export function isAbortError(err, signal) {
  if (signal && signal.aborted && err === signal.reason) return true;
  return !!err && typeof err === "object" && (err.name === "AbortError" || err.name === "TimeoutError");
}
