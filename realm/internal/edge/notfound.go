package edge

import (
	"fmt"
	"net/http"
)

// UnknownRoute answers a request no route serves, as a problem.
func (e *Edge) UnknownRoute(w http.ResponseWriter, req *http.Request) {
	e.WriteError(w, req, &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("no route for %s %s", req.Method, req.URL.Path)})
}
