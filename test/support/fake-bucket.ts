import type { Server } from 'bun'

/** A request the fake bucket received: method, path and the headers a bucket acts on. */
export interface SeenRequest {
	readonly method: string
	readonly path: string
	readonly headers: Record<string, string>
}

/** A real HTTP server that answers as a test scripts it (for what s3rver cannot be made to do: 5xx, 412, 403 codes). */
export interface FakeBucket {
	readonly endpoint: string
	readonly requests: readonly SeenRequest[]
	stop(): Promise<void>
}

/** An S3 error answer: the XML body real buckets send (empty for HEAD, as theirs). */
export function s3Error(status: number, code: string, message: string, method = 'GET'): Response {
	const body =
		method === 'HEAD'
			? null
			: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`
	return new Response(body, { status, headers: { 'Content-Type': 'application/xml' } })
}

/** Starts a fake bucket on a free loopback port; `answer` gets each request and its bucket-less path. */
export function startFakeBucket(answer: (request: Request, path: string) => Response | Promise<Response>): FakeBucket {
	const requests: SeenRequest[] = []
	const server: Server<undefined> = Bun.serve({
		hostname: '127.0.0.1',
		port: 0,
		fetch(request) {
			const path = decodeURIComponent(new URL(request.url).pathname)
			requests.push({ method: request.method, path, headers: Object.fromEntries(request.headers) })
			return answer(request, path)
		},
	})
	return {
		endpoint: `http://127.0.0.1:${server.port}`,
		requests,
		stop: () => server.stop(true),
	}
}
