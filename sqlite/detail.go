package sqlite

import (
	"database/sql"

	"llmscope"
)

// detailArg returns the detail column's value for c: NULL when c has none
// of its facts (llmscope.Call.DetailJSON).
func detailArg(c *llmscope.Call) (any, error) {
	s, ok, err := c.DetailJSON()
	if !ok || err != nil {
		return nil, err
	}
	return s, nil
}

// setDetail fills c's detail fields from the column's value.
func setDetail(c *llmscope.Call, v sql.NullString) error {
	if !v.Valid {
		return nil
	}
	return c.SetDetailJSON(v.String)
}
