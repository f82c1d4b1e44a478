import type { Server } from 'bun'
import { Webhook } from 'standardwebhooks'

/** One POST the receiver took, its signature verified. */
export interface ReceivedWebhook {
	/** `webhook-id`. */
	readonly id: string
	/** `webhook-timestamp` (unix seconds of the attempt). */
	readonly timestamp: number
	/** The raw body, and what `Webhook.verify` returned for it. */
	readonly body: string
	readonly payload: unknown
	readonly contentType: string | null
	/** performance.now() when it arrived. */
	readonly at: number
	/** What the receiver answered. */
	readonly status: number
}

/** Decides the answer to the n-th (0-based) verified request. */
export type Responder = (request: {
	readonly id: string
	readonly payload: unknown
	readonly n: number
}) => Response | Promise<Response>

/** An HTTP endpoint on a free loopback port that verifies every request with the `standardwebhooks` package. */
export interface WebhookReceiver {
	readonly port: number
	readonly url: string
	/** Every request whose signature verified, in arrival order. */
	readonly requests: readonly ReceivedWebhook[]
	/** Why each request that failed verification failed (a correct sender leaves this empty). */
	readonly rejected: readonly string[]
	/** Answers 204 unless set. */
	respond: Responder
	/** The requests answered 2xx. */
	delivered(): ReceivedWebhook[]
	/** Stops listening: connections are refused until start(). */
	stop(): Promise<void>
	/** Listens again on the same port. */
	start(): void
}

/** Starts a receiver checking signatures against `secret` (`whsec_…`). */
export function startWebhookReceiver(secret: string, options: { port?: number } = {}): WebhookReceiver {
	const verifier = new Webhook(secret)
	const requests: ReceivedWebhook[] = []
	const rejected: string[] = []
	let server: Server<undefined> | null = null
	let port = options.port ?? 0

	async function handle(request: Request): Promise<Response> {
		const at = performance.now()
		const body = await request.text()
		const headers = Object.fromEntries(request.headers)
		let payload: unknown
		try {
			payload = verifier.verify(body, headers)
		} catch (err) {
			rejected.push(err instanceof Error ? err.message : String(err))
			return new Response('bad signature', { status: 400 })
		}
		const id = headers['webhook-id'] ?? ''
		const response = await receiver.respond({ id, payload, n: requests.length })
		requests.push({
			id,
			timestamp: Number(headers['webhook-timestamp']),
			body,
			payload,
			contentType: request.headers.get('content-type'),
			at,
			status: response.status,
		})
		return response
	}

	const receiver: WebhookReceiver = {
		get port() {
			return port
		},
		get url() {
			return `http://127.0.0.1:${port}/hooks`
		},
		requests,
		rejected,
		respond: () => new Response(null, { status: 204 }),
		delivered: () => requests.filter((r) => r.status >= 200 && r.status < 300),
		async stop() {
			const running = server
			server = null
			await running?.stop(true)
		},
		start() {
			server = Bun.serve({ hostname: '127.0.0.1', port, fetch: handle })
			port = server.port ?? port
		},
	}
	receiver.start()
	return receiver
}

/** A TCP listener that accepts connections and never answers: a receiver that hangs. */
export interface SilentListener {
	readonly url: string
	/** Connections accepted so far. */
	readonly accepted: number
	stop(): void
}

/** Starts a silent listener on a free loopback port. */
export function startSilentListener(): SilentListener {
	let accepted = 0
	const listener = Bun.listen({
		hostname: '127.0.0.1',
		port: 0,
		socket: {
			open() {
				accepted++
			},
			data() {},
		},
	})
	return {
		url: `http://127.0.0.1:${listener.port}/hooks`,
		get accepted() {
			return accepted
		},
		stop() {
			listener.stop(true)
		},
	}
}
