// Package mcpapi serves the Model Context Protocol at /v1/mcp (Streamable
// HTTP, stateless, with the official Go SDK) to AI agents: every HTTP
// request is authenticated with DPoP at the realm's edge (AgentAuthed),
// and every tool call that acts is authorized per action by the agent's
// delegation and the scene's Cedar policies. It also serves the protected
// resource metadata of RFC 9728. See docs/agents.md.
package mcpapi
