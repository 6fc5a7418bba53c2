package live

// Standing says where the live edge sees an avatar's session in a scene,
// as the scene access routes read it (decide.Presence): present or not,
// the zone presence admitted it into, and the same in words.
func (s *Service) Standing(sceneID, avatarID, sessionID string) (present bool, zone, where string) {
	st := s.WhereIs(sceneID, avatarID, sessionID)
	return st.Present, st.Zone, st.String()
}
