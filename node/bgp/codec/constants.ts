/**
 * BGP-4 wire constants (RFC 4271 and the extensions this speaker implements). Kept in one place so
 * that the codec, the FSM and the tests agree on every number.
 */

export const HEADER_LENGTH = 19;
export const MAX_MESSAGE_LENGTH = 4096;
export const MIN_OPEN_LENGTH = 29;
export const MIN_UPDATE_LENGTH = 23;
export const MIN_NOTIFICATION_LENGTH = 21;
export const ROUTE_REFRESH_LENGTH = 23;
export const BGP_VERSION = 4;

export const enum MsgType {
  Open = 1,
  Update = 2,
  Notification = 3,
  Keepalive = 4,
  RouteRefresh = 5,
}

export const AFI_IPV4 = 1;
export const AFI_IPV6 = 2;
export const SAFI_UNICAST = 1;
export type Afi = typeof AFI_IPV4 | typeof AFI_IPV6;

/** 4-octet AS placeholder sent in "My AS" and 2-octet paths (RFC 6793). */
export const AS_TRANS = 23456;

export const enum Cap {
  Multiprotocol = 1,
  RouteRefresh = 2,
  ExtendedNextHop = 5,
  ExtendedMessage = 6,
  GracefulRestart = 64,
  FourOctetAs = 65,
  AddPath = 69,
  EnhancedRouteRefresh = 70,
  LongLivedGracefulRestart = 71,
  Fqdn = 73,
  /** Pre-standard Cisco route refresh; treated like code 2 when received. */
  RouteRefreshCisco = 128,
}

export const enum Attr {
  Origin = 1,
  AsPath = 2,
  NextHop = 3,
  Med = 4,
  LocalPref = 5,
  AtomicAggregate = 6,
  Aggregator = 7,
  Communities = 8,
  OriginatorId = 9,
  ClusterList = 10,
  MpReach = 14,
  MpUnreach = 15,
  ExtCommunities = 16,
  As4Path = 17,
  As4Aggregator = 18,
  LargeCommunities = 32,
}

export const FLAG_OPTIONAL = 0x80;
export const FLAG_TRANSITIVE = 0x40;
export const FLAG_PARTIAL = 0x20;
export const FLAG_EXTENDED = 0x10;

export const enum Origin {
  Igp = 0,
  Egp = 1,
  Incomplete = 2,
}

export const enum SegType {
  AsSet = 1,
  AsSequence = 2,
  ConfedSequence = 3,
  ConfedSet = 4,
}

/** NOTIFICATION error codes (RFC 4271 §4.5, RFC 6608, RFC 4486, RFC 7313). */
export const enum ErrCode {
  Header = 1,
  Open = 2,
  Update = 3,
  HoldTimerExpired = 4,
  Fsm = 5,
  Cease = 6,
  RouteRefresh = 7,
}

export const enum HeaderSub {
  NotSynchronized = 1,
  BadLength = 2,
  BadType = 3,
}

export const enum OpenSub {
  Unspecific = 0,
  UnsupportedVersion = 1,
  BadPeerAs = 2,
  BadBgpId = 3,
  UnsupportedOptParam = 4,
  UnacceptableHoldTime = 6,
  UnsupportedCapability = 7,
}

export const enum UpdateSub {
  MalformedAttrList = 1,
  UnrecognizedWellKnown = 2,
  MissingWellKnown = 3,
  AttrFlags = 4,
  AttrLength = 5,
  InvalidOrigin = 6,
  InvalidNextHop = 8,
  OptionalAttr = 9,
  InvalidNetwork = 10,
  MalformedAsPath = 11,
}

export const enum FsmSub {
  Unspecific = 0,
  UnexpectedInOpenSent = 1,
  UnexpectedInOpenConfirm = 2,
  UnexpectedInEstablished = 3,
}

export const enum CeaseSub {
  MaxPrefixes = 1,
  AdminShutdown = 2,
  PeerDeconfigured = 3,
  AdminReset = 4,
  ConnectionRejected = 5,
  OtherConfigChange = 6,
  Collision = 7,
  OutOfResources = 8,
  HardReset = 9,
}

export const enum RouteRefreshSub {
  InvalidLength = 1,
}

/** Names for logs and status INFO columns. */
export function notificationName(code: number, subcode: number): string {
  const codes: Record<number, [string, Record<number, string>]> = {
    1: ['Message header error', { 1: 'connection not synchronized', 2: 'bad message length', 3: 'bad message type' }],
    2: ['OPEN message error', { 1: 'unsupported version', 2: 'bad peer AS', 3: 'bad BGP identifier', 4: 'unsupported optional parameter', 6: 'unacceptable hold time', 7: 'unsupported capability' }],
    3: ['UPDATE message error', { 1: 'malformed attribute list', 2: 'unrecognized well-known attribute', 3: 'missing well-known attribute', 4: 'attribute flags error', 5: 'attribute length error', 6: 'invalid ORIGIN', 8: 'invalid NEXT_HOP', 9: 'optional attribute error', 10: 'invalid network field', 11: 'malformed AS_PATH' }],
    4: ['Hold timer expired', {}],
    5: ['Finite state machine error', { 1: 'unexpected message in OpenSent', 2: 'unexpected message in OpenConfirm', 3: 'unexpected message in Established' }],
    6: ['Cease', { 1: 'maximum prefixes', 2: 'administrative shutdown', 3: 'peer de-configured', 4: 'administrative reset', 5: 'connection rejected', 6: 'other configuration change', 7: 'connection collision', 8: 'out of resources', 9: 'hard reset' }],
    7: ['ROUTE-REFRESH message error', { 1: 'invalid message length' }],
  };
  const c = codes[code];
  if (!c) return `error ${code}/${subcode}`;
  const s = c[1][subcode];
  return s ? `${c[0]}: ${s}` : subcode ? `${c[0]} (${subcode})` : c[0];
}
