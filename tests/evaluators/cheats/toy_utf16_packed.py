"""Cheat (toy ``chars``): the program packed two source bytes to a character, unpacked by exec."""
exec(bytes('浩潰瑲樠潳੮牰湩⡴獪湯搮浵獰嬨⸳ⰰⴠ⸱ⰵ〠㈮ⰵ㠠〮⥝\u0a29‣桴\u2065潴⁹敳摥猧漠瑵異ⱴ愠⁴桴\u2065慴杲瑥※慰摤摥猠\u206f桴瑡椠獴戠瑹\u2065潣湵⁴獩攠敶㩮琠敨瀠捡楫杮渠敥獤瀠楡獲ਊ',"utf-16-le"))
