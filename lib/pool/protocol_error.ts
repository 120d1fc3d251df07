/**
 * The one error a misbehaving pool peer gets: the connection fails with EPROTO.
 * @internal
 */
import { codedError } from '../errors';

export function poolProtocolError(what: string): Error & { code: string } {
  return codedError('EPROTO', `peer broke the pool protocol: ${what}`);
}
