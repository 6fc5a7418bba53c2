package edge

import "github.com/zerorealm/zerorealm/internal/problem"

// ProblemOf is the problem the edge would answer err with, for a record
// that keeps an answer to give later (an approved agent action that failed
// when it ran).
func ProblemOf(err error) *problem.Error {
	a := problemFor(err)
	return &problem.Error{Status: a.status, Type: problem.Type(a.kind), Detail: a.detail, Err: err}
}
