import { connect, createServer, type Socket } from 'node:net'

/** One client connection through the proxy, as the proxy saw it. */
export interface ProxiedConnection {
	/** Bytes the upstream sent that were passed on to the client so far. */
	readonly bytesDown: number
	/** Whether both sides of it are closed. */
	readonly closed: boolean
	/** `performance.now()` when it closed, or null while open. */
	readonly closedAt: number | null
}

/** A loopback TCP proxy to one upstream port that counts, per connection, what it forwards downstream. */
export interface TcpProxy {
	readonly port: number
	/** Every connection accepted so far, in order. */
	readonly connections: readonly ProxiedConnection[]
	/** Connections not yet closed. */
	openCount(): number
	/** Stops listening and destroys every connection. */
	close(): Promise<void>
}

/**
 * Starts a proxy on a free loopback port that forwards to `127.0.0.1:upstreamPort`.
 * Backpressure passes through (`pipe`), so a reader that stops reading stops
 * the upstream too, and the counts show what the upstream really sent.
 */
export async function startTcpProxy(upstreamPort: number): Promise<TcpProxy> {
	const connections: (ProxiedConnection & { bytesDown: number; closed: boolean; closedAt: number | null })[] = []
	const sockets = new Set<Socket>()
	const server = createServer((client) => {
		const upstream = connect({ host: '127.0.0.1', port: upstreamPort })
		const connection = { bytesDown: 0, closed: false, closedAt: null as number | null }
		connections.push(connection)
		let sides = 2
		const closedOne = () => {
			if (--sides === 0) {
				connection.closed = true
				connection.closedAt = performance.now()
			}
		}
		for (const socket of [client, upstream]) {
			sockets.add(socket)
			socket.on('error', () => socket.destroy())
			socket.once('close', () => {
				sockets.delete(socket)
				closedOne()
			})
		}
		// Either side closing closes the other: the proxy never keeps a half of a dead connection.
		client.once('close', () => upstream.destroy())
		upstream.once('close', () => client.destroy())
		upstream.on('data', (chunk: Buffer) => {
			connection.bytesDown += chunk.length
		})
		client.pipe(upstream)
		upstream.pipe(client)
	})
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject)
		server.listen(0, '127.0.0.1', resolve)
	})
	const address = server.address()
	if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address')
	return {
		port: address.port,
		connections,
		openCount: () => connections.filter((c) => !c.closed).length,
		close() {
			for (const socket of sockets) socket.destroy()
			return new Promise((resolve) => server.close(() => resolve()))
		},
	}
}
