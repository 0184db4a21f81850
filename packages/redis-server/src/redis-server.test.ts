import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { startRedisServer } from './index.js'

const run = promisify(execFile)

/** What redis-cli prints for a command sent to the server on `port`. */
async function cli(port: number, ...args: string[]): Promise<string> {
  return (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim()
}

describe('startRedisServer', () => {
  it('starts on a free loopback port without persistence, and removes its directory on stop', async () => {
    const a = await startRedisServer()
    const b = await startRedisServer()
    try {
      expect(a.port).not.toBe(b.port)
      expect(a.url).toBe(`redis://127.0.0.1:${a.port}`)
      expect(a.version).toMatch(/^\d+\.\d+\.\d+$/)
      expect(await cli(a.port, 'CONFIG', 'GET', 'bind')).toBe('bind\n127.0.0.1')
      expect(await cli(a.port, 'CONFIG', 'GET', 'save')).toBe('save')
      expect(await cli(a.port, 'CONFIG', 'GET', 'appendonly')).toBe('appendonly\nno')
      expect(existsSync(a.dir)).toBe(true)
    } finally {
      await a.stop()
      await b.stop()
    }
    expect(existsSync(a.dir)).toBe(false)
    await expect(cli(a.port, 'PING')).rejects.toThrow()
  })

  it('gives a cluster node a free bus port of its own, not port + 10000, unless the arguments name one', async () => {
    const node = await startRedisServer({ args: ['--cluster-enabled', 'yes'] })
    try {
      expect(node.busPort).toBeGreaterThan(0)
      expect(node.busPort).not.toBe(node.port + 10_000)
      expect(await cli(node.port, 'CONFIG', 'GET', 'cluster-port')).toBe(`cluster-port\n${node.busPort}`)
    } finally {
      await node.stop()
    }
    const plain = await startRedisServer()
    try {
      expect(plain.busPort).toBeUndefined()
    } finally {
      await plain.stop()
    }
  })

  it('restarts on the same port and data, with the arguments it was given', async () => {
    const redis = await startRedisServer({ args: ['--appendonly', 'yes'] })
    try {
      await cli(redis.port, 'SET', 'kept', 'yes')
      await redis.restart()
      expect(await cli(redis.port, 'GET', 'kept')).toBe('yes')
    } finally {
      await redis.stop()
    }
  })
})
