/** The memory benchmark's handler: answers at once with a small result. */
export default function memoryHandler(req: { n: number }): { n: number } {
  return { n: req.n }
}
