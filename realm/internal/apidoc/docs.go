package apidoc

// Facts are what the documents state that the realm's parts define: the
// composition root gathers them from the parts, so a document never keeps
// its own copy of a value that could drift from the code that enforces it.
type Facts struct {
	// LiveErrorCodes are the codes of the realm WebSocket's error message.
	LiveErrorCodes []string
	// AvatarPageDefault and AvatarPageMax are GET /v1/avatars' page sizes.
	AvatarPageDefault, AvatarPageMax int
}

// Docs are the realm's API documents, built once from the facts.
type Docs struct {
	openAPI, asyncAPI map[string]any
}

// New builds the documents.
func New(f Facts) *Docs {
	return &Docs{openAPI: buildOpenAPI(f), asyncAPI: buildAsyncAPI(f)}
}
