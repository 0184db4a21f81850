/** A GenerateContentResponse as the simulator writes it (one candidate, text only). */
export interface SimulatedResponse {
  candidates: {
    content: { parts: { text: string }[]; role: 'model' }
    finishReason?: 'STOP' | 'MAX_TOKENS'
    index: number
  }[]
  usageMetadata: { promptTokenCount: number; candidatesTokenCount: number; totalTokenCount: number }
  modelVersion: string
  responseId: string
}

/** What every chunk of one answer shares. */
export interface AnswerInfo {
  model: string
  responseId: string
  promptTokens: number
  /** Set on the last chunk only, as the API does. */
  finishReason: 'STOP' | 'MAX_TOKENS'
}

/**
 * One GenerateContentResponse: the whole answer (unary), or one piece of it (a streamed chunk,
 * whose usage counts the tokens sent so far, including this piece).
 */
export function responseFor(
  info: AnswerInfo,
  text: string,
  tokensSoFar: number,
  isLast: boolean,
): SimulatedResponse {
  return {
    candidates: [
      {
        content: { parts: [{ text }], role: 'model' },
        ...(isLast ? { finishReason: info.finishReason } : {}),
        index: 0,
      },
    ],
    usageMetadata: {
      promptTokenCount: info.promptTokens,
      candidatesTokenCount: tokensSoFar,
      totalTokenCount: info.promptTokens + tokensSoFar,
    },
    modelVersion: info.model,
    responseId: info.responseId,
  }
}
