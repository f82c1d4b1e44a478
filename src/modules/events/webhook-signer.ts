import { Webhook } from 'standardwebhooks'

/** The headers of one webhook attempt (docs/contract.md §7), lower-case as sent. */
export interface WebhookHeaders {
	readonly 'webhook-id': string
	readonly 'webhook-timestamp': string
	readonly 'webhook-signature': string
	readonly 'content-type': 'application/json'
	readonly 'user-agent': string
}

/** Signs attempts per Standard Webhooks (HMAC-SHA256 over `<id>.<unix seconds>.<body>`). */
export interface WebhookSigner {
	/**
	 * Headers for one attempt: `webhook-id` is the event's id (the same on every
	 * redelivery, the receiver's idempotency key), `webhook-timestamp` the
	 * attempt's time, so a redelivery is never refused as a replay.
	 */
	headers(eventId: string, attemptAtMs: number, body: string): WebhookHeaders
}

const USER_AGENT = 'download-gate-webhooks'

/**
 * A signer for a `whsec_<base64>` secret (Standard Webhooks' serialization; the
 * bare base64 is accepted too). Throws when the secret is empty or not base64.
 */
export function createWebhookSigner(secret: string): WebhookSigner {
	let webhook: Webhook
	try {
		webhook = new Webhook(secret)
	} catch (err) {
		throw new Error(`webhook secret is not whsec_<base64>: ${err instanceof Error ? err.message : String(err)}`)
	}
	return {
		headers(eventId, attemptAtMs, body) {
			// The library signs whole seconds (the header's unit): it floors the Date itself.
			const at = new Date(attemptAtMs)
			return {
				'webhook-id': eventId,
				'webhook-timestamp': String(Math.floor(attemptAtMs / 1000)),
				'webhook-signature': webhook.sign(eventId, at, body),
				'content-type': 'application/json',
				'user-agent': USER_AGENT,
			}
		},
	}
}
