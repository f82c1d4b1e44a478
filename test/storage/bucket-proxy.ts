import { connect, createServer, type Socket } from 'node:net'

// A loopback TCP proxy in front of a bucket that reads the requests going up
// (the service's HEADs and GETs carry no body) and can hold one until a hook
// has run: the object can be replaced exactly between the check (HEAD) and
// the read (GET), or the bucket's connection cut mid-body. Bytes pass as they
// are, so presigned URLs keep their signature (the Host header is unchanged).

/** One request the service sent to the bucket, as seen on the wire. */
export interface BucketRequest {
	readonly method: string
	/** The path, percent-decoded, without the query (the presigned signature). */
	readonly path: string
	readonly range: string | null
	readonly ifMatch: string | null
	/** The connection it came on (an index into `connections`). */
	readonly connection: number
}

/** One connection from the service to the bucket, as the proxy saw it. */
export interface BucketConnection {
	/** Bytes of answers passed down to the service so far. */
	readonly bytesDown: number
	readonly closed: boolean
	/** Destroys both sides at once: to the service, the bucket's connection broke. */
	cut(): void
}

export interface BucketProxy {
	/** `http://127.0.0.1:<port>`, the endpoint the service is given. */
	readonly endpoint: string
	readonly requests: readonly BucketRequest[]
	readonly connections: readonly BucketConnection[]
	/**
	 * Runs before each request is passed on to the bucket (the request waits
	 * for it); null passes everything at once.
	 */
	onRequest: ((request: BucketRequest) => void | Promise<void>) | null
	/** Requests whose path ends with `suffix` (an object's key), by method. */
	requestsFor(suffix: string): { head: number; get: number }
	close(): Promise<void>
}

/** Splits complete request heads off `buffer`; bodies are refused (the service sends none). */
function takeHeads(buffer: string): { heads: string[]; rest: string } {
	const heads: string[] = []
	let rest = buffer
	for (let end = rest.indexOf('\r\n\r\n'); end >= 0; end = rest.indexOf('\r\n\r\n')) {
		const head = rest.slice(0, end + 4)
		if (/^content-length:\s*[1-9]/im.test(head) || /^transfer-encoding:/im.test(head))
			throw new Error(`the bucket proxy passes bodiless requests only: ${head.split('\r\n')[0]}`)
		heads.push(head)
		rest = rest.slice(end + 4)
	}
	return { heads, rest }
}

function parseHead(head: string, connection: number): BucketRequest {
	const [line = '', ...fields] = head.split('\r\n')
	const [method = '', target = ''] = line.split(' ')
	const header = (name: string) =>
		fields
			.find((f) => f.toLowerCase().startsWith(`${name}:`))
			?.slice(name.length + 1)
			.trim() ?? null
	return {
		method,
		path: decodeURIComponent(target.split('?')[0] ?? ''),
		range: header('range'),
		ifMatch: header('if-match'),
		connection,
	}
}

/** Starts a proxy on a free loopback port to `127.0.0.1:upstreamPort`. */
export async function startBucketProxy(upstreamPort: number): Promise<BucketProxy> {
	const requests: BucketRequest[] = []
	const connections: (BucketConnection & { bytesDown: number; closed: boolean })[] = []
	const sockets = new Set<Socket>()
	const server = createServer((client) => {
		const index = connections.length
		const upstream = connect({ host: '127.0.0.1', port: upstreamPort })
		const connection = {
			bytesDown: 0,
			closed: false,
			cut() {
				client.destroy()
				upstream.destroy()
			},
		}
		connections.push(connection)
		for (const socket of [client, upstream]) {
			sockets.add(socket)
			socket.on('error', () => socket.destroy())
			socket.once('close', () => {
				sockets.delete(socket)
				connection.cut()
				connection.closed = client.destroyed && upstream.destroyed
			})
		}
		upstream.on('data', (chunk: Buffer) => {
			connection.bytesDown += chunk.length
		})
		upstream.pipe(client)
		// Requests go up one at a time, each after its hook: in order, as HTTP/1.1 needs them.
		let pending = ''
		let queue = Promise.resolve()
		client.setEncoding('latin1')
		client.on('data', (data: string) => {
			let heads: string[]
			try {
				;({ heads, rest: pending } = takeHeads(pending + data))
			} catch (err) {
				console.error(err)
				connection.cut()
				return
			}
			for (const head of heads) {
				const request = parseHead(head, index)
				requests.push(request)
				queue = queue.then(async () => {
					await proxy.onRequest?.(request)
					if (!upstream.destroyed) upstream.write(head, 'latin1')
				})
			}
		})
	})
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject)
		server.listen(0, '127.0.0.1', resolve)
	})
	const address = server.address()
	if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address')
	const proxy: BucketProxy = {
		endpoint: `http://127.0.0.1:${address.port}`,
		requests,
		connections,
		onRequest: null,
		requestsFor(suffix) {
			const matching = requests.filter((r) => r.path.endsWith(suffix))
			return {
				head: matching.filter((r) => r.method === 'HEAD').length,
				get: matching.filter((r) => r.method === 'GET').length,
			}
		},
		close() {
			for (const socket of sockets) socket.destroy()
			return new Promise((resolve) => server.close(() => resolve()))
		},
	}
	return proxy
}
