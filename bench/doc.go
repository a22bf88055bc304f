// Package bench is wagate's load generator: the scenarios of issue 5
// (single sends, bulk batch-sends, signed Meta status webhooks and end to
// end from the API to the read row in ClickHouse), the machine's own
// ceilings for the same work (a bare fasthttp handler, pipelined XADD,
// batch inserts into a scratch ClickHouse table), and the reports (a
// terminal table, JSON and Markdown) that put every wagate figure beside
// its ceiling.
//
// It is client side only: it talks to a running gateway over HTTP, to its
// provider simulator's admin endpoints, to Redis and ClickHouse for the
// ceilings and checks, and never imports the gateway's server packages
// (ingest, dispatcher, store), so that it measures what a caller sees.
package bench
