// Runs the real Gluten SharedLibraryLoader classes (the jar on the class path) over os-release
// files and (name, version) pairs, for the differential test in ../tests.rs.
// Output, tab-separated: LIBS class libs,...  |  OS file name version  |  ACCEPTS file class true|false|NPE
package org.apache.gluten.jni;

import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.ServiceLoader;
import org.apache.gluten.spi.SharedLibraryLoader;

public class Probe extends JniLibLoader {
    private final List<String> libs = new ArrayList<>();

    Probe() {
        super("/nonexistent");
    }

    @Override
    public synchronized void loadAndCreateLink(String libPath, String linkName) {
        libs.add(libPath);
    }

    // SharedLibraryLoaderUtils.stripQuotes (Scala: stripPrefix("\"").stripSuffix("\"")).
    static String strip(String s) {
        if (s == null) return null;
        if (s.startsWith("\"")) s = s.substring(1);
        if (s.endsWith("\"")) s = s.substring(0, s.length() - 1);
        return s;
    }

    static String show(String s) {
        return s == null ? "<null>" : s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
    }

    public static void main(String[] args) throws Exception {
        for (SharedLibraryLoader l : ServiceLoader.load(SharedLibraryLoader.class)) {
            Probe p = new Probe();
            l.loadLib(p);
            System.out.println("LIBS\t" + l.getClass().getName() + "\t" + String.join(",", p.libs));
        }
        for (String f : args) {
            String name;
            String version;
            if (f.endsWith(".pair")) {
                String[] nv = new String(Files.readAllBytes(Paths.get(f)), StandardCharsets.UTF_8).split("\n", -1);
                name = nv[0];
                version = nv[1];
            } else {
                Properties props = new Properties();
                try (InputStream in = new FileInputStream(f)) {
                    props.load(in);
                } catch (IllegalArgumentException e) {
                    System.out.println("ERR\t" + f + "\t" + e);
                    continue;
                }
                name = strip(props.getProperty("NAME"));
                version = strip(props.getProperty("VERSION"));
            }
            System.out.println("OS\t" + f + "\t" + show(name) + "\t" + show(version));
            for (SharedLibraryLoader l : ServiceLoader.load(SharedLibraryLoader.class)) {
                String r;
                try {
                    r = String.valueOf(l.accepts(name, version));
                } catch (NullPointerException e) {
                    r = "NPE";
                }
                System.out.println("ACCEPTS\t" + f + "\t" + l.getClass().getName() + "\t" + r);
            }
        }
    }
}
