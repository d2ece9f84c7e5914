"""Visitors at reception: sign-in and badges, who is on site now, and the evacuation roll call."""
