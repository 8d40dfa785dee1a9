package convert

// Stage is an output directory under construction, for other writers of
// VM directories (c2vm pull): files go into Dir, a temp dir beside the
// target; Commit renames it into place (replacing an earlier c2vm output,
// refusing anything else), Abort removes it. Either the target ends
// complete, or it is absent or unchanged.
type Stage struct{ s *stage }

// NewStage starts an output directory for target.
func NewStage(target string) (*Stage, error) {
	s, err := newStage(target)
	if err != nil {
		return nil, err
	}
	return &Stage{s}, nil
}

// Dir is the temp dir to fill.
func (s *Stage) Dir() string { return s.s.dir }

// Commit moves the finished directory into place.
func (s *Stage) Commit() error { return s.s.commit() }

// Abort removes the temp dir; after Commit it does nothing.
func (s *Stage) Abort() { s.s.abort() }
