from shared.streak import Streak


def test_a_streak_is_said_once_on_its_length_th_consecutive_check():
    streak = Streak(3)
    checks = [True, True, False, True, True, True, True, True]
    assert [streak.add(holds) for holds in checks] == [False] * 5 + [True, False, False]
    assert streak.done
